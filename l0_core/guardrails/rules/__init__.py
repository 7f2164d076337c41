"""L0's built-in guardrail rules and presets.

Every rule is registered under its ``name`` (see :mod:`l0_core.plugins.builtins`) and
is used by name (``guardrails = ["json"]``), through ``l0.Guardrails``, or as
a class (``guardrails=[JsonRule]``). See ``docs/guardrails.md``.
"""

from __future__ import annotations

from l0_core.guardrails.rules.basic import RepetitionRule, StallRule, ZeroOutputRule
from l0_core.guardrails.rules.json_rule import JsonRule, StrictJsonRule
from l0_core.guardrails.rules.latex import LatexRule
from l0_core.guardrails.rules.markdown import MarkdownRule
from l0_core.guardrails.rules.patterns import PatternRule
from l0_core.guardrails.rules.presets import PRESETS, expand, preset

__all__ = [
    "BUILTIN_RULES",
    "PRESETS",
    "JsonRule",
    "LatexRule",
    "MarkdownRule",
    "PatternRule",
    "RepetitionRule",
    "StallRule",
    "StrictJsonRule",
    "ZeroOutputRule",
    "expand",
    "preset",
]

BUILTIN_RULES = (
    JsonRule,
    StrictJsonRule,
    MarkdownRule,
    LatexRule,
    PatternRule,
    ZeroOutputRule,
    StallRule,
    RepetitionRule,
)

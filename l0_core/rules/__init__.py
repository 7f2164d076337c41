"""L0's built-in guardrail rules and presets.

Every rule is registered under its ``name`` (see :mod:`l0_core.builtins`) and
is used by name (``guardrails = ["json"]``), through ``l0.Guardrails``, or as
a class (``guardrails=[JsonRule]``). See ``docs/guardrails.md``.
"""

from __future__ import annotations

from l0_core.rules.basic import RepetitionRule, StallRule, ZeroOutputRule
from l0_core.rules.json_rule import JsonRule, StrictJsonRule
from l0_core.rules.latex import LatexRule
from l0_core.rules.markdown import MarkdownRule
from l0_core.rules.patterns import PatternRule
from l0_core.rules.presets import PRESETS, expand, preset

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

"""``l0.Guardrails``: the guardrail rules and presets by name, as :class:`RuleSpec` objects.

It lives here rather than in ``l0_core/__init__.py`` so that ``import l0_core`` stays
lazy: this module is imported the first time ``l0.Guardrails`` is read.
"""

from __future__ import annotations

from typing import Any

from l0_core.guardrails.rule import RuleSpec

__all__ = ["Guardrails"]


class Guardrails:
    """Guardrail rules and presets by name: ``l0.Guardrails.json()``,
    ``l0.Guardrails.recommended()``, ``l0.Guardrails.by_name("json", ...)``.

    Every method returns :class:`RuleSpec` objects (a preset: a list of them);
    the runtime makes fresh rules from them for every session. See
    ``docs/guardrails.md`` for each rule's options and default severities.
    """

    # -- rules ----------------------------------------------------------------------------

    @staticmethod
    def by_name(name: str, **options: Any) -> RuleSpec:
        """A registered rule (built-in or from a plugin) with options."""
        return RuleSpec(name, options)

    @staticmethod
    def json(**options: Any) -> RuleSpec:
        """Well-formed JSON, checked while streaming (``require=``, ``multiple=``)."""
        return RuleSpec("json", options)

    @staticmethod
    def strict_json(**options: Any) -> RuleSpec:
        """The complete output parses as a JSON object or array."""
        return RuleSpec("strict_json", options)

    @staticmethod
    def markdown(**options: Any) -> RuleSpec:
        """Closed code fences; consistent table columns."""
        return RuleSpec("markdown", options)

    @staticmethod
    def latex(**options: Any) -> RuleSpec:
        """Balanced environments and math delimiters (only in LaTeX-looking output)."""
        return RuleSpec("latex", options)

    @staticmethod
    def pattern(categories: list[str] | None = None, **options: Any) -> RuleSpec:
        """Refusals, meta commentary, prompt leaks, placeholders, hedging, preambles."""
        if categories is not None:
            options = {"categories": list(categories), **options}
        return RuleSpec("pattern", options)

    @staticmethod
    def zero_output(**options: Any) -> RuleSpec:
        """Empty, whitespace-only or noise output."""
        return RuleSpec("zero_output", options)

    @staticmethod
    def stall(max_gap: float = 5.0, **options: Any) -> RuleSpec:
        """A warning when the output pauses longer than ``max_gap`` seconds."""
        return RuleSpec("stall", {"max_gap": max_gap, **options})

    @staticmethod
    def repetition(**options: Any) -> RuleSpec:
        """The model looping: a repeated block, or a sentence repeated over and over."""
        return RuleSpec("repetition", options)

    @staticmethod
    def custom_pattern(patterns: list[str], **options: Any) -> RuleSpec:
        """Your own regular expressions the output must not match."""
        return RuleSpec("custom_pattern", {"patterns": patterns, **options})

    # -- presets --------------------------------------------------------------------------

    @staticmethod
    def preset(name: str) -> list[RuleSpec]:
        """The rules of a preset by name (``"recommended"``, ``"strict"``...)."""
        from l0_core.guardrails.rules.presets import preset

        return preset(name)

    @staticmethod
    def presets() -> list[str]:
        """The preset names."""
        from l0_core.guardrails.rules.presets import PRESETS

        return list(PRESETS)

    @staticmethod
    def minimal() -> list[RuleSpec]:
        """``json`` and ``zero_output``."""
        return Guardrails.preset("minimal")

    @staticmethod
    def recommended() -> list[RuleSpec]:
        """``json``, ``markdown``, ``pattern`` and ``zero_output``."""
        return Guardrails.preset("recommended")

    @staticmethod
    def strict() -> list[RuleSpec]:
        """``recommended`` plus ``latex`` and ``repetition``."""
        return Guardrails.preset("strict")

    @staticmethod
    def json_only() -> list[RuleSpec]:
        """``json(require=True)`` and ``zero_output``: the output must be JSON."""
        return Guardrails.preset("json_only")

    @staticmethod
    def markdown_only() -> list[RuleSpec]:
        """``markdown`` and ``zero_output``."""
        return Guardrails.preset("markdown_only")

    @staticmethod
    def latex_only() -> list[RuleSpec]:
        """``latex`` and ``zero_output``."""
        return Guardrails.preset("latex_only")

    @staticmethod
    def none() -> list[RuleSpec]:
        """No rules."""
        return []

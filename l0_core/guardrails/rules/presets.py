"""Guardrail presets: named lists of rules, usable wherever a rule name is.

``guardrails = ["recommended"]`` in ``l0.toml``, ``L0_GUARDRAILS=recommended``,
``l0.Guardrails.recommended()`` and ``l0.Guardrails.preset("recommended")`` all
give the same rules. :func:`expand` replaces preset names by their rules; the
runtime calls it (through :func:`l0_core.guardrails.rule.create_rules`) when it
creates a session's rules. Preset names are also registered as guardrails
(:class:`PresetFactory`), so configuration accepts them and ``l0 plugins``
lists them; calling one makes a :class:`RuleGroup` of fresh rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from l0_core.guardrails.rule import Rule, RuleSpec, Violation

__all__ = ["PRESETS", "PresetFactory", "RuleGroup", "expand", "is_preset", "preset",
           "preset_factories"]

PRESETS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "minimal": (("json", {}), ("zero_output", {})),
    "recommended": (("json", {}), ("markdown", {}), ("pattern", {}), ("zero_output", {})),
    "strict": (
        ("json", {}), ("markdown", {}), ("latex", {}), ("pattern", {}), ("repetition", {}),
        ("zero_output", {}),
    ),
    "json_only": (("json", {"require": True}), ("zero_output", {})),
    "markdown_only": (("markdown", {}), ("zero_output", {})),
    "latex_only": (("latex", {}), ("zero_output", {})),
    "none": (),
}


def is_preset(name: object) -> bool:
    return isinstance(name, str) and name in PRESETS


def preset(name: str) -> list[RuleSpec]:
    """The rules of a preset, as :class:`RuleSpec` objects (a new list each time)."""
    try:
        specs = PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown guardrail preset {name!r}; presets: {', '.join(PRESETS)}"
        ) from None
    return [RuleSpec(rule, dict(options)) for rule, options in specs]


def _preset_name(item: Any) -> str | None:
    if isinstance(item, str):
        return item if item in PRESETS else None
    if isinstance(item, RuleSpec) and item.name in PRESETS:
        if item.options:
            raise TypeError(
                f"the guardrail preset {item.name!r} takes no options (got "
                f"{', '.join(sorted(item.options))}); list its rules with their options instead"
            )
        return item.name
    return None


def expand(items: Iterable[Any]) -> list[Any]:
    """``items`` with every preset name (or preset :class:`RuleSpec`) replaced by its rules."""
    out: list[Any] = []
    for item in items:
        name = _preset_name(item)
        if name is None:
            out.append(item)
        else:
            out.extend(preset(name))
    return out


class RuleGroup:
    """Several rules acting as one (what a preset's registry entry makes)."""

    def __init__(self, name: str, rules: Sequence[Rule]) -> None:
        self.name = name
        self.rules = list(rules)
        self._streaming = [r for r in self.rules if getattr(r, "streaming", True)]
        self.streaming = bool(self._streaming)

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        found: list[Violation] = []
        for rule in self._streaming:
            got = rule.check_delta(delta, offset)
            if got:
                found.extend(got)
        return found or None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        found: list[Violation] = []
        for rule in self.rules:
            got = rule.check_complete(content)
            if got:
                found.extend(got)
        return found or None


class PresetFactory:
    """The registry entry of a preset: ``factory()`` makes a :class:`RuleGroup`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, **options: Any) -> RuleGroup:
        if options:
            raise TypeError(f"the guardrail preset {self.name!r} takes no options")
        from l0_core.guardrails.rule import create_rules

        return RuleGroup(self.name, create_rules(preset(self.name)))

    def __repr__(self) -> str:
        return f"<guardrail preset {self.name}>"


def preset_factories() -> list[PresetFactory]:
    return [PresetFactory(name) for name in PRESETS]

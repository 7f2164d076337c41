"""The guardrail rule protocol, how the runtime applies rules, and rule helpers.

A rule sees the output while it streams (``check_delta``, on each new piece of
text, in O(delta)) and once at the end (``check_complete``). Rule objects hold
per-session state, so the runtime creates them afresh for every session from
what the user configured (a registered name, a :class:`RuleSpec`, a rule
class, or a factory); a plain rule instance with no ``create`` is assumed to be
stateless and shared.

What each violation does:

=========================  ==================================================
severity / recoverable     effect
=========================  ==================================================
``warning``                recorded in ``state.violations``, reported, no stop
``error``, recoverable     the attempt stops at once; retried (GUARDRAIL_VIOLATION)
``error``, not recoverable the session halts (FATAL_GUARDRAIL_VIOLATION)
``fatal``                  the session halts at once, even mid-stream
=========================  ==================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from l0_core.errors import ConfigError

__all__ = [
    "CustomPatternRule",
    "FunctionRule",
    "Rule",
    "RuleSpec",
    "Severity",
    "Violation",
    "create_rules",
]

Severity = Literal["warning", "error", "fatal"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One thing a rule found wrong."""

    rule: str
    message: str
    severity: Severity = "error"
    recoverable: bool = True
    position: int | None = None
    suggestion: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def halts(self) -> bool:
        return self.severity == "fatal" or (self.severity == "error" and not self.recoverable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "severity": self.severity,
            "recoverable": self.recoverable,
            "position": self.position,
            "suggestion": self.suggestion,
        }


@runtime_checkable
class Rule(Protocol):
    """What a guardrail rule implements.

    ``check_delta(delta, offset)`` gets each new piece of text and the offset of
    its first character in the content; ``check_complete(content)`` gets the
    whole text once at the end. Either returns violations (or ``None``).
    ``streaming = False`` skips ``check_delta``. A rule may also turn
    ``streaming`` off during a stream, once it knows it has nothing more to
    check before the end (the ``json`` rule does, when the output does not
    start like JSON): it is then not called again until ``check_complete``.
    """

    name: str
    streaming: bool

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None: ...

    def check_complete(self, content: str) -> Sequence[Violation] | None: ...


class FunctionRule:
    """A stateless rule from one or two plain functions."""

    def __init__(
        self,
        name: str,
        *,
        check_complete: Callable[[str], Sequence[Violation] | None] | None = None,
        check_delta: Callable[[str, int], Sequence[Violation] | None] | None = None,
    ) -> None:
        self.name = name
        self.streaming = check_delta is not None
        self._complete = check_complete
        self._delta = check_delta

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        return self._delta(delta, offset) if self._delta else None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        return self._complete(content) if self._complete else None


class CustomPatternRule:
    """Regular expressions the output must not match, checked as it streams.

    Each check scans the new text plus the last ``window`` characters before
    it, so a match split across tokens is found, and the work per token stays
    O(delta + window). A match is reported once.
    """

    name = "custom_pattern"
    streaming = True

    def __init__(
        self,
        patterns: Iterable[str | re.Pattern[str]] = (),
        *,
        message: str = "Custom pattern violation",
        severity: Severity = "error",
        recoverable: bool = True,
        window: int = 200,
        flags: int = re.IGNORECASE,
    ) -> None:
        compiled = [p if isinstance(p, re.Pattern) else re.compile(p, flags) for p in patterns]
        if not compiled:
            raise ValueError("custom_pattern needs at least one pattern")
        self._regex = compiled
        self.message = message
        self.severity: Severity = severity
        self.recoverable = recoverable
        self.window = window
        self._tail = ""
        self._tail_offset = 0
        self._reported: set[tuple[int, str]] = set()

    def create(self) -> CustomPatternRule:
        return CustomPatternRule(
            self._regex,
            message=self.message,
            severity=self.severity,
            recoverable=self.recoverable,
            window=self.window,
        )

    def _scan(self, text: str, base: int) -> list[Violation]:
        found: list[Violation] = []
        for regex in self._regex:
            for m in regex.finditer(text):
                key = (base + m.start(), m.group(0))
                if key in self._reported:
                    continue
                self._reported.add(key)
                found.append(
                    Violation(
                        self.name,
                        f"{self.message}: {m.group(0)!r}",
                        self.severity,
                        self.recoverable,
                        position=base + m.start(),
                        context={"pattern": regex.pattern, "matched": m.group(0)},
                    )
                )
        return found

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        text = self._tail + delta
        base = offset - len(self._tail)
        found = self._scan(text, base)
        keep = text[-self.window :] if self.window else ""
        self._tail = keep
        self._tail_offset = base + len(text) - len(keep)
        return found or None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        if self._reported:  # everything was scanned while streaming
            return None
        return self._scan(content, 0) if not self._tail else None


@dataclass(frozen=True)
class RuleSpec:
    """A named rule with options, resolved through the registry once per session.

    The name may also be a preset (``"recommended"``...): :func:`create_rules`
    expands it to the preset's rules.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def create(self) -> Rule:
        from l0_core.plugins.host import get_host

        factory = get_host().registry("guardrails").get(self.name)
        rule: Rule = factory(**self.options)
        return rule


def _create_one(item: Any) -> Rule:
    if isinstance(item, str):
        return RuleSpec(item).create()
    if isinstance(item, type):  # a class (even one with a create() method): call it
        instance: Rule = item()
        return instance
    create = getattr(item, "create", None)
    if callable(create):
        created: Rule = create()
        return created
    if hasattr(item, "check_complete") or hasattr(item, "check_delta"):
        return item  # type: ignore[no-any-return]
    if callable(item):
        made: Rule = item()
        return made
    raise ConfigError(
        f"not a guardrail rule: {item!r}; a guardrail is a rule or preset name, an "
        f"l0.Guardrails entry, a rule class or factory, or an object with check_delta / "
        f"check_complete"
    )


def create_rules(items: Iterable[Any] | str | None) -> list[Rule]:
    """Fresh rule objects for one session; preset names expand to their rules.

    ``items`` is a list of rules, or one rule or preset name (``"json"``,
    ``"recommended"``): a str is one name, never a list of one-letter names.
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = (items,)
    elif isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise ConfigError(
            f"guardrails must be a list of rules or a rule or preset name (such as "
            f"'recommended' or l0.Guardrails.recommended()), not a {type(items).__name__}"
        )
    if not items:
        return []
    from l0_core.guardrails.rules.presets import expand

    return [_create_one(item) for item in expand(items)]

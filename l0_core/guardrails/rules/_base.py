"""Plumbing shared by the built-in rules: options, severities, and stream bookkeeping.

A built-in rule is created once per session (the runtime calls the class, or
``create()`` on an instance, for every session and every attempt), so it keeps
its scanner state in plain attributes. Each rule scans every delta once with a
small carried state; ``check_complete`` then only looks at that state when the
content it is given is exactly the text that was streamed through
``check_delta``. When it is not (streaming checks were off, or the deltas did
not follow each other), it scans the content once, from scratch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, get_args

from l0_core.guardrails.rule import Severity, Violation

__all__ = ["SEVERITIES", "BuiltinRule", "check_severity"]

SEVERITIES: tuple[str, ...] = get_args(Severity)


def check_severity(value: Any, where: str) -> Severity:
    if value not in SEVERITIES:
        raise ValueError(
            f"{where}: severity must be one of {', '.join(SEVERITIES)}, not {value!r}"
        )
    severity: Severity = value
    return severity


class BuiltinRule:
    """Base of the built-in rules.

    Subclasses set ``name`` and ``default_severity``, implement ``_reset()``
    (fresh scanner state), ``_scan(delta, offset)`` (the incremental work,
    returning violations found in ``delta``) and ``_finish(content)`` (what
    is still wrong once the text is complete, from the scanner state).
    """

    name: str = ""  # the registered name (a class attribute of each rule)
    default_severity: ClassVar[Severity] = "error"

    def __init__(
        self,
        *,
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = True,
        **options: Any,
    ) -> None:
        if options:
            raise TypeError(
                f"guardrail {self.name!r} got unknown option(s): {', '.join(sorted(options))}"
            )
        self.severity: Severity = check_severity(
            self.default_severity if severity is None else severity, self.name
        )
        self.recoverable = bool(recoverable)
        self.streaming = bool(streaming)  # (a rule may turn it off mid-stream)
        self._streaming = self.streaming  # as configured
        self._pos = 0  # where the next delta must start
        self._synced = True  # every delta so far continued the previous one, from offset 0

    # -- per-session copies ------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        """The keyword arguments that make an equivalent fresh rule."""
        return {
            "severity": self.severity,
            "recoverable": self.recoverable,
            "streaming": self._streaming,
        }

    def create(self) -> BuiltinRule:
        """A fresh rule with the same options (the runtime calls this once per session)."""
        return type(self)(**self._options())

    # -- the Rule protocol -------------------------------------------------------------------

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        if offset != self._pos:
            self._resync(offset)
        self._pos = offset + len(delta)
        if not self._synced:
            return None
        return self._scan(delta, offset)

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        if self._synced and self._pos == len(content):
            return self._finish(content) or None
        # Not (or not entirely) streamed through check_delta: one scan of the whole text.
        self._restart()
        found = list(self._scan(content, 0) or ())
        self._pos = len(content)
        found.extend(self._finish(content) or ())
        return found or None

    # -- helpers -----------------------------------------------------------------------------

    def _resync(self, offset: int) -> None:
        if offset == 0:
            self._restart()  # the same rule sees a new text: start over
        else:
            self._synced = False  # a gap or an overlap: only a full scan at the end is right

    def _restart(self) -> None:
        self._pos = 0
        self._synced = True
        self.streaming = self._streaming
        self._reset()

    def _violation(
        self,
        message: str,
        position: int | None,
        suggestion: str | None = None,
        *,
        severity: Severity | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Violation:
        return Violation(
            self.name,
            message,
            self.severity if severity is None else severity,
            self.recoverable,
            position=position,
            suggestion=suggestion,
            context=dict(context) if context else {},
        )

    def _reset(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:
        raise NotImplementedError  # pragma: no cover

    def _finish(self, content: str) -> list[Violation] | None:
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        return f"<guardrail {self.name}>"


class CompletionOnlyRule(BuiltinRule):
    """A rule that only judges the whole text: it overrides ``check_complete``."""

    def _reset(self) -> None:
        return None

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:  # pragma: no cover
        return None

    def _finish(self, content: str) -> list[Violation] | None:  # pragma: no cover
        return None


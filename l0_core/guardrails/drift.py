"""The drift detector protocol and how the runtime acts on drift.

A drift detector watches the text as it streams (``check_delta``) and reports
a :class:`DriftResult` when the output drifts (meta commentary, repetition,
tone shift...). The runtime reports each drift type once, at onset, and then
acts by policy: ``flag`` records it, ``retry`` (the default) stops the attempt
with ``DRIFT_DETECTED`` and retries, ``halt`` ends the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["DriftAction", "DriftDetector", "DriftResult", "create_detector"]

DriftAction = Literal["flag", "retry", "halt"]


@dataclass(frozen=True, slots=True)
class DriftResult:
    """What a detector found: the drift ``types`` and a ``confidence`` in [0, 1]."""

    types: Sequence[str]
    confidence: float
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class DriftDetector(Protocol):
    def check_delta(self, delta: str, offset: int) -> DriftResult | None: ...


def create_detector(item: Any) -> DriftDetector | None:
    """A fresh detector for one session from a detector class, factory or ``create()``.

    ``True`` is the built-in :class:`l0_core.guardrails.drift_detector.DriftDetector`.
    """
    if item is None or item is False:
        return None
    if item is True:  # the built-in detector with its defaults
        from l0_core.guardrails.drift_detector import DriftDetector as BuiltinDetector

        return BuiltinDetector()
    create = getattr(item, "create", None)
    if callable(create):
        created: DriftDetector = create()
        return created
    if isinstance(item, type) or (callable(item) and not hasattr(item, "check_delta")):
        instance: DriftDetector = item()
        return instance
    return item  # type: ignore[no-any-return]

"""The errors of structured output.

::

    GuardrailError                GUARDRAIL_VIOLATION
     └── StructuredError          the output never parsed or validated (every attempt's
          │                       errors in ``attempts``)
          └── JSONRepairError     repair_json: the text holds no JSON value at all

Both are guardrail failures for the runtime (a parse or validation failure is retried like
a recoverable guardrail violation), so ``except l0.GuardrailError`` catches them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from l0_core.errors import ErrorCode, GuardrailError, L0Error

__all__ = ["AttemptFailure", "JSONRepairError", "StructuredError"]


@dataclass(frozen=True, slots=True)
class AttemptFailure:
    """Why one attempt's output was rejected.

    :ivar attempt: the attempt's number on its stream (from 1).
    :ivar fallback_index: which stream (0: the primary).
    :ivar stage: ``"parse"`` (no JSON could be read) or ``"validation"`` (the schema said no).
    :ivar errors: the parser's or validator's messages (``"age: Input should be a valid
        integer"``...).
    :ivar raw: the text the attempt produced.
    """

    attempt: int
    fallback_index: int
    stage: str
    errors: tuple[str, ...]
    raw: str

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "fallbackIndex": self.fallback_index,
                "stage": self.stage, "errors": list(self.errors)}


class StructuredError(GuardrailError):
    """Structured output failed for good: no attempt produced valid data.

    ``attempts`` lists why each rejected attempt was rejected (:class:`AttemptFailure`);
    ``errors`` is every error of the session, in order (network failures too);
    ``__cause__`` is the error the session ended with.
    """

    def __init__(
        self,
        message: str,
        code: ErrorCode | str | None = None,
        *,
        attempts: Sequence[AttemptFailure] = (),
        errors: Iterable[L0Error] = (),
        **kw: Any,
    ) -> None:
        super().__init__(message, code, **kw)
        self.attempts = tuple(attempts)
        self.errors = list(errors)


class JSONRepairError(StructuredError):
    """``repair_json`` found no JSON value in the text."""

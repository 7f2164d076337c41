"""The completion-time check that makes structured output part of the session.

A :class:`Validation` belongs to one ``structured*()`` call. It reaches the runtime as a
guardrail rule (:class:`StructuredRule`, ``streaming = False``: nothing runs per token)
whose ``check_complete`` parses, heals (``auto_correct``) and validates each attempt's
whole text. A failure is a recoverable violation, so the runtime does what it does for any
guardrail: the attempt's text is discarded, the model is asked again with a *fresh*
generation from the factory (never the same buffered text), then the fallbacks. Every
step is reported as ``STRUCTURED_*`` observability events through the session's own
``emit``: same ``stream_id``, same context, same listeners as the rest of the run.

With ``feedback`` on, the reasons reach the next attempt the way continuation does: the
factory receives an :class:`l0_core.Resume` whose ``checkpoint`` is the rejected answer
and whose ``prompt`` says what was wrong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from l0_core.errors import ConfigError, ErrorCode, GuardrailError, L0Error
from l0_core.events import ObservabilityEventType as T
from l0_core.guardrails.rule import Violation
from l0_core.runtime.continuation import Resume
from l0_core.runtime.sources import takes_resume
from l0_core.structured_output.errors import AttemptFailure, JSONRepairError, StructuredError
from l0_core.structured_output.repair import Correction, Repaired, repair_json
from l0_core.structured_output.schema import Invalid, Schema

if TYPE_CHECKING:
    from l0_core.runtime.session import Session

__all__ = ["RULE_NAME", "StructuredRule", "Validation", "default_feedback"]

log = logging.getLogger("l0")

RULE_NAME = "structured"
_PREVIEW = 200


def default_feedback(failure: AttemptFailure) -> str:
    """The instruction sent after a rejected answer (``feedback=True``)."""
    what = "was not valid JSON" if failure.stage == "parse" else "did not match the schema"
    problems = "\n".join(f"- {e}" for e in failure.errors[:20])
    return (
        f"Your previous answer {what}. Problems:\n{problems}\n\n"
        f"Answer again with only the corrected JSON, nothing else."
    )


def _noop(type: T, **meta: Any) -> None:
    return None


class Validation:
    """Parse, heal and validate each attempt's text; remember what happened."""

    def __init__(
        self,
        schema: Schema,
        *,
        auto_correct: bool,
        strict: bool,
        feedback: bool | Callable[[AttemptFailure], str],
        on_validation_error: Callable[[AttemptFailure], Any] | None,
        on_auto_correct: Callable[[Repaired], Any] | None,
    ) -> None:
        self.schema = schema
        self.auto_correct = auto_correct
        self.strict = strict
        self.feedback = feedback
        self.on_validation_error = on_validation_error
        self.on_auto_correct = on_auto_correct
        self.failures: list[AttemptFailure] = []
        self.pending: AttemptFailure | None = None  # feedback not yet given to a factory
        self.session: Session | None = None
        self.emit: Callable[..., None] = _noop
        # the last accepted attempt: (data, corrected text, corrections)
        self.accepted: tuple[Any, str, tuple[Correction, ...]] | None = None

    def bind(self, session: Session) -> None:
        self.session = session
        self.emit = session.emit

    # -- the check ------------------------------------------------------------------------------

    def check(self, content: str) -> Sequence[Violation] | None:
        emit = self.emit
        started = time.perf_counter()
        self.accepted = None
        emit(T.STRUCTURED_PARSE_START, contentLength=len(content))
        try:
            data, corrected, corrections = self._parse(content)
        except Invalid as bad:
            emit(T.STRUCTURED_PARSE_END, success=False, durationMs=_ms(started))
            return [self._reject(content, bad)]
        except Exception as exc:  # a user validator that raised (KeyError...): invalid too
            raised = Invalid("validation", [f"{type(exc).__name__}: {exc}"])
            emit(T.STRUCTURED_VALIDATION_END, valid=False, durationMs=_ms(started))
            emit(T.STRUCTURED_VALIDATION_ERROR, errors=list(raised.errors))
            emit(T.STRUCTURED_PARSE_END, success=False, durationMs=_ms(started))
            return [self._reject(content, raised)]
        self.accepted = (data, corrected, corrections)
        emit(T.STRUCTURED_PARSE_END, success=True, durationMs=_ms(started))
        return None

    def _parse(self, content: str) -> tuple[Any, str, tuple[Correction, ...]]:
        # (pydantic parses and validates in one call: VALIDATION_START comes before it, and
        # an answer that does not parse ends its validation with valid=False)
        t0 = time.perf_counter()
        self.emit(T.STRUCTURED_VALIDATION_START, schemaName=self.schema.name)
        try:
            data = self.schema.validate_json(content, self.strict)
        except Invalid as first:
            if first.stage == "validation" or not self.auto_correct:
                self._report_invalid(first, t0, content)
                raise
            self.emit(T.STRUCTURED_VALIDATION_END, valid=False, durationMs=_ms(t0))
            repaired = self._repair(content, first)
            t0 = time.perf_counter()
            self.emit(T.STRUCTURED_VALIDATION_START, schemaName=self.schema.name)
            try:
                data = self.schema.validate_json(repaired.text, self.strict)
            except Invalid as second:
                self._report_invalid(second, t0, repaired.text)
                raise
            self._validated(t0)
            return data, repaired.text, repaired.corrections
        self._validated(t0)
        return data, content, ()

    def _repair(self, content: str, first: Invalid) -> Repaired:
        emit = self.emit
        t0 = time.perf_counter()
        emit(T.STRUCTURED_AUTO_CORRECT_START, errorCount=len(first.errors))
        try:
            st = self.session.state if self.session is not None else None
            # an answer that ended normally is all there is: a number at its end is whole
            complete = st is None or st.finish_reason != "length"
            repaired = repair_json(content, complete=complete, expect=self.schema.kind)
        except JSONRepairError as exc:
            emit(T.STRUCTURED_AUTO_CORRECT_END, success=False, correctionsMade=0,
                 durationMs=_ms(t0))
            emit(T.STRUCTURED_PARSE_ERROR, error=exc.message, contentPreview=content[:_PREVIEW])
            raise Invalid("parse", [exc.message]) from None
        emit(T.STRUCTURED_AUTO_CORRECT_END, success=True,
             correctionsMade=len(repaired.corrections), durationMs=_ms(t0),
             corrections=[c.to_dict() for c in repaired.corrections[:100]])
        if self.on_auto_correct is not None and repaired.corrections:
            _call("on_auto_correct", self.on_auto_correct, repaired)
        return repaired

    def _validated(self, t0: float) -> None:
        self.emit(T.STRUCTURED_VALIDATION_END, valid=True, durationMs=_ms(t0))

    def _report_invalid(self, bad: Invalid, t0: float, text: str) -> None:
        emit = self.emit
        emit(T.STRUCTURED_VALIDATION_END, valid=False, durationMs=_ms(t0))
        if bad.stage == "parse":
            emit(T.STRUCTURED_PARSE_ERROR, error=bad.errors[0] if bad.errors else "invalid JSON",
                 contentPreview=text[:_PREVIEW])
            return
        emit(T.STRUCTURED_VALIDATION_ERROR, errors=list(bad.errors))

    def _reject(self, content: str, bad: Invalid) -> Violation:
        st = self.session.state if self.session is not None else None
        failure = AttemptFailure(
            attempt=st.attempt if st is not None else 1,
            fallback_index=st.fallback_index if st is not None else 0,
            stage=bad.stage, errors=tuple(bad.errors), raw=content,
        )
        self.failures.append(failure)
        self.pending = failure
        if self.on_validation_error is not None:
            _call("on_validation_error", self.on_validation_error, failure)
        what = "is not valid JSON" if bad.stage == "parse" else "does not match the schema"
        summary = "; ".join(bad.errors[:3]) + (" ..." if len(bad.errors) > 3 else "")
        # position 0: the whole text is bad, so even with continuation on, the next attempt
        # starts afresh instead of continuing the rejected text
        return Violation(RULE_NAME, f"the output {what}: {summary}", "error", True,
                         position=0, context={"stage": bad.stage, "errors": list(bad.errors)})

    # -- feedback to the next attempt --------------------------------------------------------------

    def with_feedback(self, factory: Any, index: int) -> Any:
        """``factory``, or (feedback on) a factory that hands it the reasons of a rejection."""
        if not self.feedback or not callable(factory) or hasattr(factory, "__anext__"):
            return factory
        if not takes_resume(factory):
            raise ConfigError(
                "feedback=True needs stream factories that take a Resume (a first parameter "
                "named resume): the rejected answer and the reasons reach the next attempt "
                "as resume.checkpoint and resume.prompt"
            )
        build = self.feedback if callable(self.feedback) else default_feedback

        def attempt(resume: Resume | None = None) -> Any:
            failure, self.pending = self.pending, None
            if resume is None and failure is not None:
                number = failure.attempt + 1 if failure.fallback_index == index else 1
                resume = Resume(failure.raw, 0, number, index, build(failure))
            return factory(resume)

        info = getattr(factory, "l0_source", None)
        if info is not None:
            attempt.l0_source = info  # type: ignore[attr-defined]
        return attempt

    # -- the end ------------------------------------------------------------------------------

    def final_error(self, error: L0Error, errors: list[L0Error]) -> L0Error:
        """What the structured call raises when the session failed with ``error``."""
        ours = error
        if error.code is ErrorCode.ALL_STREAMS_EXHAUSTED and isinstance(error.__cause__, L0Error):
            ours = error.__cause__
        if not (isinstance(ours, GuardrailError)
                and any(v.rule == RULE_NAME for v in ours.violations) and self.failures):
            return error
        last = self.failures[-1]
        n = len(self.failures)
        made = StructuredError(
            f"structured output failed after {n} rejected attempt{'s' if n > 1 else ''}; "
            f"the last: {ours.violations[0].message}",
            attempts=self.failures, errors=errors, violations=ours.violations,
            context=error.context, token_count=error.token_count,
            fallback_index=last.fallback_index,
        )
        made.__cause__ = error
        return made


class StructuredRule:
    """The guardrail through which a :class:`Validation` sees each attempt's whole text."""

    name = RULE_NAME
    streaming = False

    def __init__(self, validation: Validation) -> None:
        self.validation = validation

    def create(self) -> StructuredRule:
        return self  # its state lives in the Validation, which outlives the attempts

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        return None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        return self.validation.check(content)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _call(name: str, fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        fn(arg)
    except Exception:
        log.exception("l0: %s raised; ignored", name)

"""After an attempt fails: what to do next, and what of its text to keep.

:func:`decide` turns an error into a :class:`Decision` (retry, fall back, or
halt, with the backoff delay and the reason); :func:`kept_parts` says how much
of the text survives; :func:`final_error` is what the session raises when it
gives up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from l0_core.errors import KINDS, ErrorCategory, ErrorCode, L0Error, Recovery
from l0_core.runtime.retry import RetryContext, maybe_await

if TYPE_CHECKING:
    from l0_core.runtime.attempt import Attempt
    from l0_core.runtime.session import Session

__all__ = ["Decision", "decide", "final_error", "kept_parts"]

log = logging.getLogger("l0")


@dataclass(slots=True)
class Decision:
    """``action`` is ``retry``, ``fallback``, ``halt``, ``halt-exhausted`` (retries used
    up, no fallback left) or ``halt-bare`` (an iterator cannot be read again)."""

    action: str
    delay: float
    reason: str
    keep: int = 0  # the parts of state.parts that survive (see kept_parts), once decided

    @property
    def goes_on(self) -> bool:
        return self.action in ("retry", "fallback")


def _move_on(has_fallback: bool, reason: str, halt: str = "halt") -> Decision:
    return Decision("fallback" if has_fallback else halt, 0.0, reason)


async def decide(s: Session, err: L0Error, index: int) -> Decision:
    """The recovery for ``err`` on source ``index``, given the retries used on it."""
    has_fallback = index + 1 < len(s.sources)
    kind = KINDS[err.code]
    if kind.recovery is Recovery.HALT or s.stop is not None:
        return Decision("halt", 0.0, f"{err.code.value} is not recoverable")
    if kind.recovery is Recovery.FALLBACK:
        return _move_on(has_fallback, f"{err.code.value} needs another model"
                        if has_fallback else f"{err.code.value} and no fallback left")
    r = s.retry
    used = s.network_retries if kind.network_budget else s.model_retries
    total = s.model_retries + s.network_retries
    exhausted = (
        used >= (r.network_attempts if kind.network_budget else r.attempts)
        or total >= r.max_retries
        or (r.retry_on is not None and err.code not in r.retry_on)
    )
    if exhausted:
        return _move_on(has_fallback, "Retries exhausted", "halt-exhausted")
    if has_fallback and total >= r.fallback_after:  # another model may do better: move on
        return Decision("fallback", 0.0,
                        f"{total + 1} attempts failed; moving to the next model")
    if s.sources[index].bare:
        return _move_on(has_fallback, "the stream was an iterator and cannot be retried",
                        "halt-bare")
    if err.retry_after is not None and err.retry_after > r.max_retry_after:
        return _move_on(has_fallback,
                        f"Retry-After of {err.retry_after:g}s is above max_retry_after")
    if r.should_retry is not None and not await _allowed(s, err, used):
        return _move_on(has_fallback, "Retries exhausted", "halt-exhausted")
    return Decision("retry", await _delay(s, err, used), err.message)


async def _allowed(s: Session, err: L0Error, used: int) -> bool:
    assert s.retry.should_retry is not None
    try:
        return bool(await maybe_await(
            s.retry.should_retry(err, s.state, used, err.category.value)))
    except Exception as exc:
        log.warning("l0: should_retry raised %r; not retrying", exc)
        return False


async def _delay(s: Session, err: L0Error, used: int) -> float:
    r = s.retry
    delay = r.delay_for(err, used)
    if r.calculate_delay is None:
        return delay
    ctx = RetryContext(
        attempt=used, error=err, is_network=KINDS[err.code].network_budget,
        model_retry_count=s.model_retries, network_retry_count=s.network_retries,
        total_retries=s.model_retries + s.network_retries, base_delay=r.base_delay,
        max_delay=r.max_delay, default_delay=delay,
    )
    try:
        custom = await maybe_await(r.calculate_delay(ctx))
    except Exception as exc:
        log.warning("l0: calculate_delay raised %r; using the default delay", exc)
        return delay
    return delay if custom is None else max(0.0, float(custom))


def kept_parts(s: Session, attempt: Attempt, err: L0Error, decision: Decision) -> int:
    """How many parts of ``state.parts`` survive ``err``.

    Halting keeps what was delivered. A restart keeps what came before the attempt.
    A continuation keeps, after a content failure (guardrail, drift, empty output),
    only the last checkpoint, and never text at or after where a violation says the
    bad text begins; after a transport failure, everything the streaming checks
    passed (everything delivered, when there are no checks).
    """
    st = s.state
    if not decision.goes_on:
        return len(st.parts)
    if s.continuation is None:
        return attempt.start
    if err.category is not ErrorCategory.CONTENT or err.code is ErrorCode.INCOMPLETE:
        return attempt.checks.validated if attempt.checks.active else len(st.parts)
    keep = st.checkpoint_parts
    positions = [v.position for v in getattr(err, "violations", ())
                 if getattr(v, "position", None) is not None]
    if positions:
        first_bad = min(positions)
        chars = 0
        for k, part in enumerate(st.parts[:keep]):
            if chars + len(part) > first_bad:
                return k
            chars += len(part)
    return keep


def final_error(s: Session, err: L0Error) -> L0Error:
    """The error the session ends with: ``err``, or ``ALL_STREAMS_EXHAUSTED`` when the
    last fallback failed in a way a model could recover from."""
    st = s.state
    if err.code is ErrorCode.STREAM_ABORTED and not s.closing:
        st.aborted = True
        s.abort_completed()
    n = len(s.sources)
    if n > 1 and st.fallback_index == n - 1 and KINDS[err.code].recovery is not Recovery.HALT:
        final = L0Error(
            f"all {n} streams failed; the last error: {err.message}",
            ErrorCode.ALL_STREAMS_EXHAUSTED,
            fallback_index=st.fallback_index,
            token_count=err.token_count,
            metadata={"errors": [e.code.value for e in s.errors_seen]},
            context=s.context,
        )
        final.__cause__ = err
        return final
    return err

"""The session: one ``run()``, many attempts, one honest stream of events.

:meth:`Session.events` is the attempt driver: open an attempt, read it, and on
failure decide (``recovery.py``), tell the consumer, and retry or fall back.
The token loops live in it because a token must be yielded from the
consumer's own generator frame to stay cheap; there are two:

- the **plain loop**, when no per-token work is configured: append, yield;
- the **general loop**, which takes every piece of text through
  :meth:`Attempt.text` (deduplication, the check tick, callbacks).

Per-attempt state (rules, detector, deduplication, counters) is built in one
place, :class:`~l0_core.runtime.attempt.Attempt`, so nothing stale crosses
from one attempt to the next. Timers cost nothing per token: see
``watchdog.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

from l0_core.context import EMPTY_CONTEXT, freeze
from l0_core.errors import KINDS, ErrorCode, L0Error, Recovery, TimeoutException, classify
from l0_core.events import (
    Complete,
    Data,
    Discard,
    ErrorEvent,
    Event,
    Media,
    Message,
    ObservabilityEvent,
    Progress,
    Token,
    ToolCall,
)
from l0_core.events import ObservabilityEventType as T
from l0_core.runtime.adapters import Adapter, EventsAdapter, TextAdapter
from l0_core.runtime.attempt import END, Attempt
from l0_core.runtime.continuation import Continuation, Resume
from l0_core.runtime.lifecycle import Callbacks, Isolation
from l0_core.runtime.options import CheckIntervals, Timeout
from l0_core.runtime.recovery import Decision, decide, final_error, kept_parts
from l0_core.runtime.retry import Retry
from l0_core.runtime.retry import sleep as backoff_sleep
from l0_core.runtime.sources import Source
from l0_core.runtime.state import State
from l0_core.runtime.watchdog import Watchdog, driving_task, innermost_future

__all__ = ["Listener", "Session"]

log = logging.getLogger("l0")

Listener = tuple[str, Callable[[ObservabilityEvent], Any]]  # (name for the logs, callable)

_TEXT = TextAdapter()
_EVENTS = EventsAdapter()
_mono = time.monotonic
_NEVER = 1 << 30  # the check interval of a session with nothing to check


def _new_id() -> str:
    try:
        from uuid import uuid7  # type: ignore[attr-defined]
    except ImportError:  # before Python 3.14
        from uuid6 import uuid7
    return str(uuid7())


class Session:
    """Everything about one ``run``: its options, its state and its event generator."""

    __slots__ = (
        "_abort_reported",
        "_cancelled_by_us",
        "_id",
        "_mono0",
        "_total_handle",
        "_wall0",
        "adapter_hint",
        "adapter_options",
        "build_prompt",
        "callbacks",
        "checking",
        "close_waiter",
        "closing",
        "context",
        "continuation",
        "detect_zero",
        "drift_action",
        "drift_item",
        "errors_seen",
        "failure",
        "finished",
        "gen",
        "guardrail_items",
        "interval",
        "intervals",
        "isolation",
        "items",
        "listeners",
        "model_retries",
        "network_retries",
        "notify",
        "per_token",
        "recorder",
        "retry",
        "sources",
        "started",
        "state",
        "stop",
        "timeout",
        "token_listener",
        "watchdog",
    )

    def __init__(
        self,
        sources: list[Source],
        *,
        retry: Retry,
        timeout: Timeout,
        guardrails: Iterable[Any] | None,
        drift: Any,
        drift_action: str,
        intervals: CheckIntervals,
        continuation: Continuation | None,
        build_continuation_prompt: Callable[[str], str] | None,
        adapter: Any,
        adapter_options: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None,
        keep_raw: bool,
        detect_zero_tokens: bool,
        listeners: list[Listener],
        token_listener: Callable[[ObservabilityEvent], Any] | None,
        callbacks: Callbacks | None,
        isolation: Isolation,
        recorder: Any = None,
    ) -> None:
        self.sources = sources
        self.retry = retry
        self.timeout = timeout
        self.guardrail_items = guardrails
        self.drift_item = drift
        self.drift_action = drift_action
        self.intervals = intervals
        self.continuation = continuation
        self.build_prompt = build_continuation_prompt
        self.adapter_hint = adapter
        self.adapter_options = adapter_options
        self.context = freeze(context) if context else EMPTY_CONTEXT
        self.detect_zero = detect_zero_tokens
        self.listeners = listeners
        self.token_listener = token_listener
        self.callbacks = callbacks
        self.isolation = isolation
        self.recorder = recorder  # record=...: l0_core.record.recorder.Recorder
        self.state = State()
        if recorder is not None:
            recorder.bind(self.state)  # it harvests state.parts: no per-token work
        self.state.callback_errors = isolation.counts
        if keep_raw:
            self.state.raw_chunks = []
        self.notify = self._pick_notify()  # per-token callbacks, or None
        self.per_token = bool(keep_raw or self.notify is not None)  # work beyond the tick
        self.interval = self._interval()
        self.checking = self.interval < _NEVER  # guardrails, drift or checkpoint events
        self.watchdog = Watchdog(timeout.initial_token, timeout.inter_token,
                                 progress=self.progress, reading=self.reading,
                                 on_stall=self.interrupt)
        self.items = 0  # non-text items, for the watchdog
        self.model_retries = self.network_retries = 0  # on the current source
        self.errors_seen: list[L0Error] = []
        self.stop: L0Error | None = None  # abort() or the total budget asked to stop
        self.closing = False  # aclose() from another task: end quietly
        self.failure: L0Error | None = None  # what the session ended with, if it failed
        self.started = self.finished = False
        self.gen: weakref.ref[Any] | None = None
        self.close_waiter: asyncio.Future[None] | None = None
        self._id: str | None = None
        self._cancelled_by_us: str | None = None
        self._abort_reported = False
        self._mono0 = self._wall0 = 0.0
        self._total_handle: asyncio.TimerHandle | None = None

    def _interval(self) -> int:
        n = _NEVER
        iv = self.intervals
        if self.guardrail_items:
            n = min(n, iv.guardrails)
        if self.drift_item:
            n = min(n, iv.drift)
        if self.continuation is not None and self.listeners:  # CHECKPOINT_SAVED events
            n = min(n, iv.checkpoint)
            self.per_token = True
        return n

    # -- the attempt driver ----------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:  # noqa: C901 (the loops stay inline: see above)
        self._begin()
        st = self.state
        attempt = Attempt(self, 0, 1, None)
        try:
            while True:
                try:
                    for ev in attempt.first_item(await attempt.open()):
                        yield ev
                    if self.stop is not None:
                        raise self.stop
                    it, feed, step = attempt.it, attempt.feed, attempt.step
                    append, new, plain = st.parts.append, object.__new__, attempt.plain
                    if not (plain and attempt.fast):
                        raw, tick, notify = st.raw_chunks, attempt.checks.tick_before, self.notify
                        interval, left, fast = self.interval, attempt.left, attempt.fast
                        async for item in it:  # the general loop
                            if raw is not None:
                                raw.append(item)
                            r = item if feed is None else feed(item)
                            if fast and type(r) is str:
                                if not r:
                                    continue
                                append(r)
                                left -= 1
                                if left <= 0:
                                    tick()
                                    left = interval
                                tok = new(Token)
                                tok.text = r
                                if notify is not None:
                                    notify(r, tok)
                                yield tok
                            else:  # the first text, held text, non-text items
                                attempt.left = left
                                for ev in step(item, r):
                                    yield ev
                                left, fast = attempt.left, attempt.fast
                                if plain and fast and self.stop is None:
                                    break  # the plain loop reads the rest
                            if self.stop is not None:
                                raise self.stop
                        else:
                            it = None  # the source ended
                    if it is not None:
                        async for item in it:  # the plain loop
                            r = item if feed is None else feed(item)
                            if type(r) is str:
                                if r:
                                    append(r)
                                    # object.__new__ + a slot store skips an __init__ frame
                                    tok = new(Token)
                                    tok.text = r
                                    yield tok
                                    if self.stop is not None:
                                        raise self.stop
                            else:
                                for ev in step(item, r):
                                    yield ev
                                if self.stop is not None:
                                    raise self.stop
                    for ev in attempt.finish():
                        yield ev
                    break
                except (Exception, asyncio.CancelledError) as exc:
                    err, decision = await self._fail(attempt, exc)
                    for ev in self._announce(attempt, err, decision):
                        yield ev
                    attempt = await self._next(attempt, err, decision)
                finally:
                    self.watchdog.disarm()
                    await attempt.close()
            yield self._complete(attempt)
        except L0Error as failure:
            if self.closing and failure.code is ErrorCode.STREAM_ABORTED:
                return  # closed from another task: end quietly
            self.failure = failure
            raise
        finally:
            self._end(attempt)

    def _begin(self) -> None:
        if self.started:
            raise RuntimeError("an L0 stream can be iterated only once")
        self.started = True
        self._mono0 = _mono()
        self._wall0 = time.time() * 1000.0
        self.state.started_at = self._mono0
        if self.timeout.total is not None:
            loop = asyncio.get_running_loop()
            self._total_handle = loop.call_at(loop.time() + self.timeout.total, self._on_total)
        if self.listeners:  # (no event objects, nor their keyword dicts, without listeners)
            self.emit(T.SESSION_START, attempt=1, isRetry=False, isFallback=False)
            if self.stop is not None and self.stop.code is ErrorCode.STREAM_ABORTED:
                self.emit(T.ABORT_REQUESTED, source="user")  # abort() came before iteration

    # -- when an attempt fails ---------------------------------------------------------------

    async def _fail(self, attempt: Attempt, raised: BaseException) -> tuple[L0Error, Decision]:
        """Classify the failure and decide what comes next."""
        self.watchdog.disarm()
        exc = raised
        if isinstance(exc, asyncio.CancelledError):
            exc = self._convert_cancel(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise exc  # a real cancellation: never retried, never swallowed
        elif self._cancelled_by_us is not None:
            # we interrupted the read and the source turned the cancellation into an error
            # of its own (an HTTP client's "server error"): report what really happened
            ours = self._convert_cancel(asyncio.CancelledError())
            if isinstance(ours, L0Error):
                ours.__cause__ = raised
                exc = ours
        err = self._record(attempt, classify(exc, _classify_hook()))
        try:
            decision = await decide(self, err, attempt.index)
        except asyncio.CancelledError as cancel:
            raise self._stopped(cancel) from None
        if decision.action == "halt-bare":
            bare = L0Error(
                f"{err.code.value}: {err.message} - and the stream cannot be retried because "
                f"it was given as an iterator; pass a factory (a function that returns a new "
                f"stream)",
                ErrorCode.INVALID_STREAM, context=self.context,
            )
            bare.__cause__ = err
            self.errors_seen.append(bare)
            err = bare
        decision.keep = kept_parts(self, attempt, err, decision)
        self._report(attempt, err, decision)
        return err, decision

    def _announce(self, attempt: Attempt, err: L0Error, decision: Decision) -> Iterator[Event]:
        """What the consumer hears of a failure: the error event, then (unless the
        session ends here) the discard of text that will not be kept. Between the two,
        an abort or the total budget may end the session."""
        if err.code is not ErrorCode.STREAM_ABORTED:  # (the caller asked for an abort)
            event = ErrorEvent(err, decision.action == "retry", decision.action == "fallback")
            self.on_consumer_event(event)
            yield event
        if err is not self.stop:
            self._raise_if_stopped()
        if not decision.goes_on:
            final = self._give_up(attempt, err, decision)
            raise final from final.__cause__
        discard = self._discard(attempt, err, decision)
        if discard is not None:
            yield discard
            self._raise_if_stopped()

    def _record(self, attempt: Attempt, err: L0Error) -> L0Error:
        st = self.state
        err.token_count = len(st.parts)
        err.content_length = self.chars_at(len(st.parts))
        err.model_retry_count = st.model_retry_count
        err.network_retry_count = st.network_retry_count
        err.fallback_index = attempt.index
        err.context = self.context
        st.errors.append(err)
        self.errors_seen.append(err)
        if err.code is ErrorCode.NETWORK_ERROR and self.listeners:
            self.emit(T.NETWORK_ERROR, error=err.message, code=err.code.value, retryable=True)
        return err

    def _report(self, attempt: Attempt, err: L0Error, decision: Decision) -> None:
        keep = decision.keep
        continuing = self.continuation is not None and decision.goes_on
        strategy = (
            Recovery.CONTINUE if continuing and keep > 0 else
            Recovery.RETRY if decision.action == "retry" else
            Recovery.FALLBACK if decision.action == "fallback" else Recovery.HALT
        )
        err.checkpoint = "".join(self.state.parts[:keep]) if keep else None
        if self.listeners:
            self.emit(
                T.ERROR, error=err.message, errorCode=err.code.value,
                failureType=err.failure_type.value, recoveryStrategy=strategy.value,
                willRetry=decision.action == "retry", willFallback=decision.action == "fallback",
                policy={
                    "retryEnabled": self.retry.max_retries > 0,
                    "fallbackEnabled": len(self.sources) > 1,
                    "maxRetries": self.retry.max_retries,
                    "maxFallbacks": len(self.sources) - 1,
                    "attempt": attempt.number,
                    "fallbackIndex": attempt.index,
                },
                _error=err,
            )

    def _give_up(self, attempt: Attempt, err: L0Error, decision: Decision) -> L0Error:
        if decision.action == "halt-exhausted" and self.listeners:
            self.emit(T.RETRY_GIVE_UP, attempt=attempt.number, maxAttempts=self._max_for(err),
                      reason=decision.reason)
        final = final_error(self, err)
        if final is not err:
            final.__cause__ = err
        return final

    def _discard(self, attempt: Attempt, err: L0Error, decision: Decision) -> Discard | None:
        """Forget the text (and, on a restart, the tool calls) that will not be kept."""
        st = self.state
        keep = decision.keep
        continuing = self.continuation is not None
        dropped_calls = [] if continuing else st.tool_calls[attempt.tools_from:]
        dropped_data = 0 if continuing else len(st.data_outputs) - attempt.data_from
        if len(st.parts) <= keep and not dropped_calls and not dropped_data:
            return None
        dropped = "".join(st.parts[keep:])
        offset = self.chars_at(keep)
        if self.recorder is not None:
            self.recorder.harvest()  # the delivered text is recorded before it is dropped
        st._truncate(keep)
        if not continuing:
            del st.tool_calls[attempt.tools_from:]
            del st.data_outputs[attempt.data_from:]
        self.emit(T.DISCARD, attempt=attempt.number, fallbackIndex=attempt.index, offset=offset,
                  length=len(dropped), reason=err.code.value, toolCalls=len(dropped_calls),
                  dataOutputs=dropped_data)
        discard = Discard(dropped, offset, attempt.number, err.code.value)
        self.on_consumer_event(discard)
        return discard

    async def _next(self, attempt: Attempt, err: L0Error, decision: Decision) -> Attempt:
        """Close the failed attempt, wait out the backoff, and build the next attempt."""
        st = self.state
        retrying = decision.action == "retry"
        resume = self._resume_point(attempt, retrying)
        if retrying:
            self._count_retry(err, decision)
        elif self.model_retries + self.network_retries > 0 \
                or decision.reason == "Retries exhausted":
            self.emit(T.RETRY_GIVE_UP, attempt=attempt.number, maxAttempts=self._max_for(err),
                      reason=decision.reason)
        try:
            await attempt.close()
            if retrying and decision.delay > 0:
                await backoff_sleep(decision.delay)
        except asyncio.CancelledError as cancel:
            raise self._stopped(cancel) from None
        self._raise_if_stopped()
        if retrying:
            nxt = Attempt(self, attempt.index, attempt.number + 1, resume)
            self.emit(T.ATTEMPT_START, attempt=nxt.number, isRetry=True, isFallback=False)
        else:
            self.emit(T.FALLBACK_START, fromIndex=attempt.index, toIndex=attempt.index + 1,
                      reason=decision.reason)
            self.model_retries = self.network_retries = 0
            nxt = Attempt(self, attempt.index + 1, 1, resume)
            self.emit(T.FALLBACK_MODEL_SELECTED, index=nxt.index, reason=decision.reason)
        if resume is not None:
            st.resumed = st.continuation_used = True
            self.emit(T.CONTINUATION_START, checkpoint=resume.checkpoint,
                      tokenCount=resume.token_count)
            self.emit(T.RESUME_START, checkpoint=resume.checkpoint, tokenCount=resume.token_count)
        return nxt

    def _resume_point(self, attempt: Attempt, retrying: bool) -> Resume | None:
        keep = len(self.state.parts)  # after the discard, exactly what is kept
        if self.continuation is None or keep == 0:
            return None
        self.save_checkpoint(keep)
        number = attempt.number + 1 if retrying else 1
        index = attempt.index if retrying else attempt.index + 1
        checkpoint = self.state.content
        try:
            return Resume.build(checkpoint, keep, number, index, self.build_prompt)
        except Exception as exc:
            log.warning("l0: build_continuation_prompt raised %r; using the default prompt", exc)
            return Resume.build(checkpoint, keep, number, index, None)

    def _count_retry(self, err: L0Error, decision: Decision) -> None:
        st = self.state
        network = KINDS[err.code].network_budget
        if network:
            self.network_retries += 1
            st.network_retry_count += 1
        else:
            self.model_retries += 1
            st.model_retry_count += 1
        total = self.model_retries + self.network_retries
        if total == 1:
            self.emit(T.RETRY_START, attempt=1, maxAttempts=self._max_for(err))
        self.emit(T.RETRY_ATTEMPT, attempt=total, maxAttempts=self._max_for(err),
                  reason=decision.reason, delayMs=decision.delay * 1000.0, isNetwork=network)

    def _max_for(self, err: L0Error) -> int:
        r = self.retry
        return r.network_attempts if KINDS[err.code].network_budget else r.attempts

    # -- the end of a session -------------------------------------------------------------------

    def _complete(self, attempt: Attempt) -> Complete:
        st = self.state
        st.completed = True
        now = _mono()
        st.last_token_at = now if st.parts else None
        st.duration = now - self._mono0
        if self.model_retries + self.network_retries > 0:
            self.emit(T.RETRY_END, attempt=attempt.number, success=True)
        if attempt.index > 0:
            self.emit(T.FALLBACK_END, success=True, finalIndex=attempt.index)
        content = st.content
        if self.listeners:
            self.emit(T.COMPLETE, tokenCount=len(st.parts), contentLength=len(content),
                      _state=st)
        complete = Complete(content, st.usage, st.finish_reason)
        if self.callbacks is not None or self.recorder is not None:
            self.on_consumer_event(complete)
        return complete

    def _end(self, attempt: Attempt) -> None:
        self.finished = True
        st = self.state
        if not (st.completed or self.closing) and self.failure is None and self.stop is not None:
            st.aborted = True  # cancelled or closed after abort() or the total budget
        waiter = self.close_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._total_handle is not None:
            self._total_handle.cancel()
        if st.duration is None:
            st.duration = _mono() - self._mono0
        if not self.listeners:
            return
        if not st.completed and attempt.index > 0:
            self.emit(T.FALLBACK_END, success=False, finalIndex=attempt.index)
        last = self.errors_seen[-1] if self.errors_seen and not st.completed else None
        self.emit(
            T.SESSION_SUMMARY, tokenCount=len(st.parts), startTs=self._wall0,
            endTs=self._wall0 + (_mono() - self._mono0) * 1000.0,
            driftDetected=st.drift_detected, guardrailViolations=len(st.violations),
            fallbackDepth=attempt.index, retryCount=st.retry_count,
            checkpointsCreated=st.checkpoint_parts > 0, completed=st.completed,
            errorCode=last.code.value if last is not None else None,
        )
        if self.failure is None:
            self.emit(T.SESSION_END, completed=st.completed)
        else:  # the error the stream raised (ALL_STREAMS_EXHAUSTED, say), for observers
            self.emit(T.SESSION_END, completed=False, _error=self.failure)

    # -- events and callbacks ---------------------------------------------------------------

    @property
    def stream_id(self) -> str:
        if self._id is None:
            self._id = _new_id()
        return self._id

    def clock(self) -> float:
        return _mono()

    def emit(self, type: T, **meta: Any) -> None:
        if not self.listeners:
            return
        ts = self._wall0 + (_mono() - self._mono0) * 1000.0
        event = ObservabilityEvent(type, ts, self.stream_id, self.context, meta)
        call = self.isolation.call
        for name, listener in self.listeners:
            call(name, listener, event)

    def _pick_notify(self) -> Callable[[str, Token], None] | None:
        user = self._pick_user_notify()
        recorder = self.recorder
        if recorder is None or recorder.timing != "token":
            return user  # (the recorder harvests state.parts instead)
        record: Callable[[str, Token], None] = recorder.token
        if user is None:
            return record

        def record_and_notify(text: str, token: Token) -> None:
            record(text, token)
            user(text, token)

        return record_and_notify

    def _pick_user_notify(self) -> Callable[[str, Token], None] | None:
        cbs = self.callbacks
        on_token = cbs.on_token if cbs is not None else None
        on_stream_event = cbs.on_stream_event if cbs is not None else None
        if on_stream_event is None and self.token_listener is None:
            if on_token is None:
                return None
            failed, done = self.isolation.failed, self.isolation.scheduled

            def on_token_only(text: str, token: Token) -> None:  # (one call per token)
                try:
                    result = on_token(text)
                except Exception as exc:
                    failed("on_token", exc)
                    return
                if result is not None:
                    done("on_token", result)

            return on_token_only
        return self._notify_token

    def _notify_token(self, text: str, token: Token) -> None:
        """Per-token callbacks and the ``TOKEN`` observability event (``on_event`` only)."""
        cbs = self.callbacks
        call = self.isolation.call
        if cbs is not None:
            if cbs.on_token is not None:
                call("on_token", cbs.on_token, text)
            if cbs.on_stream_event is not None:
                call("on_stream_event", cbs.on_stream_event, token)
        if self.token_listener is not None:
            ts = self._wall0 + (_mono() - self._mono0) * 1000.0
            event = ObservabilityEvent(T.TOKEN, ts, self.stream_id, self.context,
                                       {"text": text, "index": len(self.state.parts) - 1})
            call("on_event", self.token_listener, event)

    def on_consumer_event(self, event: Event) -> None:
        if self.recorder is not None:
            self.recorder.consumer(event)
        cbs = self.callbacks
        if cbs is not None and cbs.on_stream_event is not None:
            self.isolation.call("on_stream_event", cbs.on_stream_event, event)

    def side_event(self, ev: Event) -> list[Event]:
        """Record a non-text event an adapter produced; it is delivered as it is."""
        st = self.state
        if isinstance(ev, ToolCall):
            st.tool_calls.append(ev)
            self.emit(T.TOOL_REQUESTED, toolName=ev.name, toolCallId=ev.id,
                      arguments=ev.arguments)
        elif isinstance(ev, Data):
            if isinstance(ev, Media):  # the typed piece itself; previews are not outputs
                if not ev.partial:
                    st.data_outputs.append(ev)
            else:
                st.data_outputs.append(ev.data)
        elif isinstance(ev, Progress):
            st.last_progress = ev.data
        elif not isinstance(ev, Message):
            raise L0Error(
                f"an adapter returned a {type(ev).__name__} event from feed(); adapters report "
                f"text as str and errors by raising",
                ErrorCode.INVALID_STREAM,
            )
        self.on_consumer_event(ev)
        return [ev]

    def save_checkpoint(self, n_parts: int) -> None:
        st = self.state
        st.checkpoint_parts = n_parts
        if self.recorder is not None and len(self.listeners) == 1:
            # only the recorder listens: it keeps the count, not the text (O(1))
            self.emit(T.CHECKPOINT_SAVED, tokenCount=n_parts)
        elif self.listeners:
            self.emit(T.CHECKPOINT_SAVED, checkpoint=st.checkpoint, tokenCount=n_parts)

    def may_continue_on_length(self) -> bool:
        cont, r = self.continuation, self.retry
        return (cont is not None and cont.continue_on_length and self.model_retries < r.attempts
                and self.model_retries + self.network_retries < r.max_retries)

    def abort_completed(self) -> None:
        if not self._abort_reported:
            self._abort_reported = True
            st = self.state
            self.emit(T.ABORT_COMPLETED, tokenCount=len(st.parts), contentLength=len(st.content))

    def chars_at(self, n_parts: int) -> int:
        """Characters in the first ``n_parts`` pieces (O(1) when all parts are joined)."""
        parts = self.state.parts
        if n_parts == len(parts):
            return len(self.state.content)
        return sum(map(len, parts[:n_parts]))

    def pick_adapter(self, first: Any, src: Any) -> Adapter:
        adapter, name = self._find_adapter(first)
        if self.listeners:
            self.emit(T.ADAPTER_WRAP_START, streamType=type(src).__name__)
            self.emit(T.ADAPTER_DETECTED, adapterId=name)
            self.emit(T.ADAPTER_WRAP_END, adapterId=name)
        return adapter

    def _find_adapter(self, first: Any) -> tuple[Adapter, str]:
        hint = self.adapter_hint
        if hint is not None:
            if hint == "text":
                return _TEXT, "text"
            if hint == "events":
                return _EVENTS, "events"
            adapter: Adapter = _registry().get(hint) if isinstance(hint, str) else hint
            return adapter, adapter.name
        if first is END or type(first) is str:
            return _TEXT, "text"
        if isinstance(first, Event):
            return _EVENTS, "events"
        registry = _registry()
        for name, candidate in registry.items():
            try:
                if candidate.detect(first):
                    return candidate, name
            except Exception as exc:
                log.warning("l0: adapter %s.detect raised %r; skipped", name, exc)
        raise L0Error(
            f"no adapter understands stream items of type {type(first).__module__}."
            f"{type(first).__qualname__}; installed adapters: {', '.join(registry.names())}. "
            f"Install the provider's L0 package (for OpenAI: pip install l0-openai) or pass "
            f"adapter=...",
            ErrorCode.ADAPTER_NOT_FOUND,
        )

    # -- stopping: abort(), the total budget, the watchdog ---------------------------------------

    def progress(self) -> int:
        return len(self.state.parts) + self.items

    def reading(self) -> bool:
        gen = self.gen() if self.gen is not None else None
        return gen is not None and gen.ag_await is not None

    def interrupt(self) -> None:
        """Interrupt the pending read (or backoff) of whichever task drives the stream."""
        gen = self.gen() if self.gen is not None else None
        if gen is None:
            return
        target = innermost_future(gen)
        if target is not None:
            self._cancelled_by_us = "future"
            target.cancel()
            return
        task = driving_task(gen)
        if task is not None and not task.done():
            self._cancelled_by_us = "task"
            task.cancel()

    def request_stop(self, error: L0Error) -> None:
        if self.stop is None:
            self.stop = error
        if self.reading():
            self.interrupt()

    def _on_total(self) -> None:
        self._total_handle = None
        total = self.timeout.total
        assert total is not None
        self.emit(T.TIMEOUT_TRIGGERED, timeoutType="total",
                  elapsedMs=(_mono() - self._mono0) * 1000.0, configuredMs=total * 1000.0)
        self.request_stop(TimeoutException(
            f"the session took longer than its total budget of {total}s",
            ErrorCode.TOTAL_TIMEOUT, timeout=total,
        ))

    def _raise_if_stopped(self) -> None:
        """End the session now if abort() or the total budget asked for it meanwhile."""
        if self.stop is not None:
            final = final_error(self, self.stop)
            raise final from final.__cause__

    def _stopped(self, cancel: asyncio.CancelledError) -> BaseException:
        """A cancellation while recovering: our abort/timeout becomes its typed error."""
        converted = self._convert_cancel(cancel)
        if isinstance(converted, L0Error):
            return final_error(self, converted)
        return converted

    def _convert_cancel(self, exc: asyncio.CancelledError) -> BaseException:
        """Turn our own interruption into a typed error; let real cancellation through."""
        how, self._cancelled_by_us = self._cancelled_by_us, None
        if how is None:
            return exc
        task = asyncio.current_task()
        if how == "task" and task is not None:
            task.uncancel()
        if task is not None and task.cancelling():
            return exc  # somebody else cancelled too: honour it
        fired = self.watchdog.take_fired()
        if fired is not None:
            which, limit, idle = fired
            self.emit(T.TIMEOUT_TRIGGERED, timeoutType=which, elapsedMs=idle * 1000.0,
                      configuredMs=limit * 1000.0)
            first = which == "initial"
            return TimeoutException(
                f"no {'first' if first else 'next'} token within {limit:g}s",
                ErrorCode.INITIAL_TOKEN_TIMEOUT if first else ErrorCode.INTER_TOKEN_TIMEOUT,
                timeout=limit,
            )
        if self.stop is not None:
            return self.stop
        return exc


def _registry() -> Any:
    from l0_core.plugins.host import get_host

    return get_host().registry("adapters")


def _classify_hook() -> Any:
    from l0_core.plugins.host import get_host

    return get_host().classify_hook

"""The streaming runtime: one session, many attempts, one honest stream of events.

``l0.run(stream=factory, ...)`` returns a :class:`Stream` at once; the work
happens while it is iterated. A session makes attempts: the factory is called
afresh for each, retries repeat the same factory, fallbacks move to the next.

Performance notes. Per token the work is: one step of this module's single
async generator, appending to a list, and one small event object. Timers cost
nothing per token: a watchdog (``loop.call_at``) looks at the length of the
content list every quarter of the inter-token budget and only interrupts the
consumer's task when the generator is really waiting on the source
(``ag_await``), so a slow consumer is never mistaken for a stalled stream.
Features that need per-token work (guardrails, drift, checkpoints, callbacks,
continuation) switch the session to a general loop.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from typing import Any

from l0_core.context import EMPTY_CONTEXT, freeze
from l0_core.errors import (
    KINDS,
    ErrorCategory,
    ErrorCode,
    GuardrailError,
    L0Error,
    Recovery,
    TimeoutError,
    classify,
)
from l0_core.events import (
    Complete,
    Data,
    Discard,
    ErrorEvent,
    Event,
    Message,
    ObservabilityEvent,
    Progress,
    Token,
    ToolCall,
)
from l0_core.events import ObservabilityEventType as T
from l0_core.guardrails.drift import DriftDetector, DriftResult, create_detector
from l0_core.guardrails.rule import Rule, Violation, create_rules
from l0_core.plugins import host as _plugins
from l0_core.plugins.config import defaults_for_run
from l0_core.runtime.adapters import Adapter, AdapterSession, EventsAdapter, Finish, TextAdapter
from l0_core.runtime.continuation import Continuation, OverlapRemover, Resume
from l0_core.runtime.lifecycle import Callbacks, safe_call
from l0_core.runtime.options import CheckIntervals, Timeout
from l0_core.runtime.retry import Retry, RetryContext, maybe_await
from l0_core.runtime.retry import sleep as backoff_sleep
from l0_core.runtime.state import State

__all__ = ["Stream", "run"]

log = logging.getLogger("l0")

StreamFactory = Callable[..., Any]

_DEFAULT_RETRY = Retry()
_DEFAULT_TIMEOUT = Timeout()
_DEFAULT_INTERVALS = CheckIntervals()
_TEXT = TextAdapter()
_EVENTS = EventsAdapter()
_mono = time.monotonic


def _new_id() -> str:
    try:
        from uuid import uuid7  # type: ignore[attr-defined]
    except ImportError:  # before Python 3.14
        from uuid6 import uuid7
    return str(uuid7())


class _Factory:
    """One stream source: a factory (retryable) or a bare iterator (one attempt only)."""

    __slots__ = ("bare", "fn", "takes_resume", "used")

    def __init__(self, source: Any) -> None:
        self.used = False
        if callable(source) and not hasattr(source, "__anext__"):
            self.fn = source
            self.bare = False
            self.takes_resume = _accepts_argument(source)
        else:
            self.fn = source
            self.bare = True
            self.takes_resume = False

    def call(self, resume: Resume | None) -> Any:
        if self.bare:
            if self.used:
                raise L0Error(
                    "this stream was given as an iterator, so it cannot be read a second time "
                    "for a retry or continuation; pass a function that returns a new stream "
                    "(a factory) instead",
                    ErrorCode.INVALID_STREAM,
                )
            self.used = True
            return self.fn
        if self.takes_resume:
            return self.fn(resume)
        return self.fn()


def _accepts_argument(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__self__"):
        return bool(code.co_argcount >= 1 or code.co_flags & inspect.CO_VARARGS)
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


async def _close(*things: Any) -> None:
    """Close upstream objects: ``aclose()`` or ``close()``; errors are logged, never raised."""
    seen: set[int] = set()
    for thing in things:
        if thing is None or id(thing) in seen:
            continue
        if getattr(thing, "ag_frame", True) is None:  # an async generator that already ended
            continue
        seen.add(id(thing))
        closer = getattr(thing, "aclose", None) or getattr(thing, "close", None)
        if closer is None:
            continue
        try:
            result = closer()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            log.debug("l0: closing %r raised %r", thing, exc)


class _Watchdog:
    """Idle timers for one attempt, checked without any per-token work.

    A timer callback looks at the session's progress (text pieces plus other
    items) every quarter of the limit. Only time spent while the generator is
    really waiting on the source counts: when a check finds the consumer holding
    control, the clock restarts at the next check that finds the generator
    reading again. So an idle source is detected between 1 and 1.5 limits after
    its last item, and a slow consumer never looks like a stall.
    """

    __slots__ = ("fired", "handle", "idle", "initial", "inter", "last_change", "last_seen",
                 "limit", "phase", "session")

    def __init__(self, session: _Session, initial: float | None, inter: float | None) -> None:
        self.session = session
        self.initial = initial
        self.inter = inter
        self.handle: asyncio.TimerHandle | None = None
        self.fired: str | None = None
        self.phase = "initial"
        self.limit: float | None = initial
        self.idle = False
        self.last_seen = -1
        self.last_change = 0.0

    def arm(self) -> None:
        self.phase = "initial"
        self._start(self.initial)

    def to_inter(self) -> None:
        self.phase = "inter"
        handle, limit = self.handle, self.inter
        if handle is not None and limit is not None:
            # keep the pending check when it comes soon enough: saves a cancel + call_at
            loop = asyncio.get_running_loop()
            now = loop.time()
            if handle.when() <= now + limit / 4.0:
                self.limit = limit
                self.last_change = now
                self.last_seen = self.session.progress()
                self.idle = False
                return
        self._start(limit)

    def _start(self, limit: float | None) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.limit = limit
        if limit is None:
            return
        loop = asyncio.get_running_loop()
        self.last_change = loop.time()
        self.last_seen = self.session.progress()
        self.idle = False
        self.handle = loop.call_at(self.last_change + limit / 4.0, self._fire)

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _fire(self) -> None:
        self.handle = None
        limit = self.limit
        if limit is None:
            return
        s = self.session
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not s.reading():
            self.idle = True
        else:
            seen = s.progress()
            if self.idle or seen != self.last_seen:
                self.idle = False
                self.last_seen = seen
                self.last_change = now
            elif now - self.last_change >= limit * 0.999:
                self.fired = self.phase
                s.interrupt()
                return
        self.handle = loop.call_at(min(now + limit / 4.0, self.last_change + limit)
                                   if not self.idle else now + limit / 4.0, self._fire)


def _innermost_future(gen: Any) -> asyncio.Future[Any] | None:
    """The future at the bottom of what ``gen`` is awaiting, or ``None``.

    Cancelling that one future interrupts exactly the pending read, in whatever
    task is driving the stream (``asyncio.wait_for`` and ``gather`` run it in
    tasks of their own). Opaque awaitables (an async generator's ``asend``, a
    future's iterator) are looked into through ``gc.get_referents``; this runs
    only when a timer fires or on ``abort()``, never per token.
    """
    obj: Any = gen.ag_await
    for _ in range(128):
        if obj is None:
            return None
        if isinstance(obj, asyncio.Future):
            return None if isinstance(obj, asyncio.Task) else obj
        if hasattr(obj, "cr_await"):
            obj = obj.cr_await
        elif hasattr(obj, "ag_await"):
            obj = obj.ag_await
        elif hasattr(obj, "gi_yieldfrom"):
            obj = obj.gi_yieldfrom
        else:
            obj = next(
                (r for r in gc.get_referents(obj)
                 if isinstance(r, asyncio.Future) or hasattr(r, "cr_await")
                 or hasattr(r, "ag_await") or hasattr(r, "gi_yieldfrom")),
                None,
            )
    return None


class _Session:
    """Everything about one ``run``: options, state, and the event generator."""

    def __init__(
        self,
        sources: list[_Factory],
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
        listeners: list[Callable[[ObservabilityEvent], Any]],
        callbacks: Callbacks | None,
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
        self.keep_raw = keep_raw
        self.detect_zero = detect_zero_tokens
        self.listeners = listeners
        self.callbacks = callbacks
        self.state = State()
        if keep_raw:
            self.state.raw_chunks = []
        self._id: str | None = None
        self._mono0 = 0.0
        self._wall0 = 0.0
        self._gen: weakref.ref[Any] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._stop: L0Error | None = None
        self._cancelled_by_us: str | None = None
        self._items = 0  # non-text items, for the watchdog
        self._validated = 0  # parts that passed every streaming check
        self._interval = 0  # tokens between periodic checks (computed once)
        self._g_off = 0  # characters already seen by the guardrails
        self._d_off = 0  # characters already seen by the drift detector
        self._wd: _Watchdog | None = None
        self._total_handle: asyncio.TimerHandle | None = None
        self.started = False
        self.finished = False
        self._close_waiter: asyncio.Future[None] | None = None

    # -- identity and events --------------------------------------------------------------

    @property
    def stream_id(self) -> str:
        if self._id is None:
            self._id = _new_id()
        return self._id

    def emit(self, type: T, **meta: Any) -> None:
        if not self.listeners:
            return
        ts = self._wall0 + (_mono() - self._mono0) * 1000.0
        event = ObservabilityEvent(type, ts, self.stream_id, self.context, meta)
        for listener in self.listeners:
            safe_call(listener, event)

    # -- watchdog support ------------------------------------------------------------------

    def progress(self) -> int:
        return len(self.state.parts) + self._items

    def reading(self) -> bool:
        gen = self._gen() if self._gen is not None else None
        return gen is not None and gen.ag_await is not None

    def interrupt(self) -> None:
        gen = self._gen() if self._gen is not None else None
        target = _innermost_future(gen) if gen is not None else None
        if target is not None and not target.done():
            self._cancelled_by_us = "future"
            target.cancel()
            return
        task = self._task
        if task is not None and not task.done():
            self._cancelled_by_us = "task"
            task.cancel()

    def request_stop(self, error: L0Error) -> None:
        if self._stop is None:
            self._stop = error
        if self.reading():
            self.interrupt()

    def _on_total(self) -> None:
        self._total_handle = None
        assert self.timeout.total is not None
        self.emit(
            T.TIMEOUT_TRIGGERED,
            timeoutType="total",
            elapsedMs=self.timeout.total * 1000.0,
            configuredMs=self.timeout.total * 1000.0,
        )
        self.request_stop(
            TimeoutError(
                f"the session took longer than its total budget of {self.timeout.total}s",
                ErrorCode.TOTAL_TIMEOUT,
                timeout=self.timeout.total,
            )
        )

    # -- the event generator -------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        if self.started:
            raise RuntimeError("an L0 stream can be iterated only once")
        self.started = True
        st = self.state
        self._task = asyncio.current_task()
        self._mono0 = _mono()
        self._wall0 = time.time() * 1000.0
        st.started_at = self._mono0
        loop = asyncio.get_running_loop()
        if self.timeout.total is not None:
            self._total_handle = loop.call_at(loop.time() + self.timeout.total, self._on_total)
        if self.listeners:  # (no event objects, nor their keyword dicts, without listeners)
            self.emit(T.SESSION_START, attempt=1, isRetry=False, isFallback=False)
        if self._stop is not None and self._stop.code is ErrorCode.STREAM_ABORTED:
            self.emit(T.ABORT_REQUESTED, source="user")  # abort() came before iteration
        wd = self._wd = _Watchdog(self, self.timeout.initial_token, self.timeout.inter_token)
        index = 0
        attempt = 1
        model_retries = network_retries = 0  # per stream (reset on fallback)
        resume: Resume | None = None
        rules: list[Rule] = create_rules(self.guardrail_items)
        streaming_rules = [r for r in rules if getattr(r, "streaming", True)]
        detector = create_detector(self.drift_item)
        cont = self.continuation
        per_token = bool(
            streaming_rules
            or detector is not None
            or (cont is not None and bool(self.listeners))  # CHECKPOINT_SAVED events
            or self.keep_raw
            or (self.callbacks is not None
                and (self.callbacks.on_token or self.callbacks.on_stream_event))
        )
        needs_step = bool(  # per-token work that only the general step does
            self.keep_raw
            or (self.callbacks is not None and self.callbacks.on_stream_event)
        )
        on_token = self.callbacks.on_token if self.callbacks is not None else None
        last_error: L0Error | None = None
        errors_seen: list[L0Error] = []
        try:
            while True:
                if self._stop is not None:
                    raise self._final_error(self._stop, errors_seen)
                source = self.sources[index]
                st.attempt = attempt
                st.fallback_index = index
                src: Any = None
                it: Any = None
                session: AdapterSession | None = None
                delivered_from = len(st.parts)  # where this attempt's text starts
                self._validated = delivered_from
                self._g_off = self._d_off = self._chars_at(delivered_from)
                tools_from, data_from = len(st.tool_calls), len(st.data_outputs)
                checked = delivered_from  # parts already seen by streaming guardrails
                drift_checked = delivered_from
                dedup: OverlapRemover | None = None
                if resume is not None and cont is not None and cont.deduplicate:
                    dedup = OverlapRemover(resume.checkpoint, cont.min_overlap, cont.max_overlap)
                if streaming_rules and attempt + index > 1:
                    rules = create_rules(self.guardrail_items)
                    streaming_rules = [r for r in rules if getattr(r, "streaming", True)]
                    if resume is not None and resume.checkpoint:
                        for rule in streaming_rules:  # re-feed what is kept so state is right
                            try:
                                rule.check_delta(resume.checkpoint, 0)
                            except Exception as rule_exc:
                                log.warning("l0: guardrail %s raised %r; ignored", rule.name,
                                            rule_exc)
                if detector is not None and attempt + index > 1:
                    detector = create_detector(self.drift_item)
                reported_drift: set[str] = set()
                try:
                    # ---- open the stream --------------------------------------------------
                    if self.listeners:
                        self.emit(T.STREAM_INIT)
                    wd.arm()
                    if self.listeners and self.timeout.initial_token is not None:
                        self.emit(T.TIMEOUT_START, timeoutType="initial",
                                  configuredMs=self.timeout.initial_token * 1000.0)
                    src = source.call(resume)
                    if not hasattr(src, "__aiter__") and inspect.isawaitable(src):
                        src = await src
                    aiter_ = getattr(src, "__aiter__", None)
                    if aiter_ is None:
                        raise L0Error(
                            f"the stream factory returned a {type(src).__name__}, which is not "
                            f"an async iterator",
                            ErrorCode.INVALID_STREAM,
                        )
                    it = aiter_()
                    try:
                        first = await it.__anext__()
                    except StopAsyncIteration:
                        first = _END
                    if self.keep_raw and first is not _END:
                        assert st.raw_chunks is not None
                        st.raw_chunks.append(first)
                    adapter = self._pick_adapter(first, src)
                    session = adapter.open(self.adapter_options)
                    feed = session.feed
                    if self.listeners:
                        self.emit(T.STREAM_READY)

                    # ---- the general step, used until the first token and when features
                    # need per-token work --------------------------------------------------
                    countdown = self._countdown()

                    def step(item: Any) -> Any:
                        if raw is not None:
                            raw.append(item)
                        return handle(feed(item))

                    def handle(r: Any) -> Any:
                        """Process one adapter result: text, nothing, events or a mix."""
                        if type(r) is not str:
                            self._items += 1
                            if r is None:
                                return None
                            if isinstance(r, Event):
                                if type(r) is Token:
                                    return text_step(r.text or "")
                                return self._side_events(r)
                            mixed: list[Event] = []  # text and events from one item
                            before = len(parts)
                            try:
                                for ev in r:
                                    if type(ev) is Token:
                                        tok = text_step(ev.text or "")
                                        if tok is not None:
                                            mixed.append(tok)
                                    else:
                                        mixed.extend(self._side_events(ev))
                            except L0Error:
                                st._truncate(before)  # none of this item was delivered
                                raise
                            return mixed
                        return text_step(r)

                    def text_step(r: str) -> Token | None:
                        nonlocal countdown, checked, drift_checked
                        if not r:
                            return None
                        if dedup is not None and not dedup.done:
                            r = dedup.push(r)
                            if dedup.removed:
                                st.deduplication_applied = True
                                st.overlap_removed = dedup.removed
                            if not r:
                                self._items += 1  # held back, but the source is alive
                                return None
                        parts.append(r)
                        countdown -= 1
                        if countdown <= 0:
                            checked, drift_checked = self._tick_before(
                                streaming_rules, detector, reported_drift, checked,
                                drift_checked
                            )
                            countdown = self._countdown()
                        token = Token(r)
                        if cbs is not None:
                            if cbs.on_token is not None:
                                safe_call(cbs.on_token, r)
                            if cbs.on_stream_event is not None:
                                safe_call(cbs.on_stream_event, token)
                        return token

                    parts = st.parts
                    raw = None  # the first item was recorded above
                    cbs = self.callbacks
                    out = step(first) if first is not _END else None
                    raw = st.raw_chunks
                    ended = first is _END
                    if out is not None:
                        if type(out) is Token:
                            yield out
                        else:
                            for ev in out:
                                yield ev
                        if self._stop is not None:
                            raise self._stop
                    # ---- until the first token ---------------------------------------------
                    while not ended and len(parts) == delivered_from:
                        try:
                            item = await it.__anext__()
                        except StopAsyncIteration:
                            ended = True
                            break
                        out = step(item)
                        if out is not None:
                            if type(out) is Token:
                                yield out
                            else:
                                for ev in out:
                                    yield ev
                            if self._stop is not None:
                                raise self._stop
                    if len(parts) > delivered_from:
                        if st.first_token_at is None:
                            st.first_token_at = _mono()
                        wd.to_inter()
                        if self.listeners:
                            self.emit(
                                T.TIMEOUT_RESET,
                                timeoutType="inter",
                                configuredMs=_ms(self.timeout.inter_token),
                                tokenIndex=len(parts) - 1,
                            )
                    # ---- the hot loops -------------------------------------------------------
                    if not ended:
                        if per_token and not needs_step and dedup is None:
                            # checks without callbacks: inline text path, periodic ticks
                            append = parts.append
                            new = object.__new__
                            left = countdown
                            if adapter is _TEXT:  # (str items: no adapter call, one check)
                                async for item in it:
                                    if type(item) is not str:
                                        feed(item)  # raises INVALID_STREAM
                                    if not item:
                                        continue
                                    append(item)
                                    left -= 1
                                    if left <= 0:
                                        checked, drift_checked = self._tick_before(
                                            streaming_rules, detector, reported_drift,
                                            checked, drift_checked)
                                        left = self._countdown()
                                    tok = new(Token)
                                    tok.text = item
                                    if on_token is not None:
                                        safe_call(on_token, item)
                                    yield tok
                                    if self._stop is not None:
                                        raise self._stop
                            else:
                                async for item in it:
                                    r = feed(item)
                                    if type(r) is str:
                                        if not r:
                                            continue
                                        append(r)
                                        left -= 1
                                        if left <= 0:
                                            checked, drift_checked = self._tick_before(
                                                streaming_rules, detector, reported_drift,
                                                checked, drift_checked)
                                            left = self._countdown()
                                        tok = new(Token)
                                        tok.text = r
                                        if on_token is not None:
                                            safe_call(on_token, r)
                                        yield tok
                                        if self._stop is not None:
                                            raise self._stop
                                        continue
                                    countdown = left
                                    out = handle(r)
                                    left = countdown
                                    if out is not None:
                                        for ev in ([out] if type(out) is Token else out):
                                            yield ev
                                        if self._stop is not None:
                                            raise self._stop
                        elif per_token or dedup is not None:
                            async for item in it:
                                out = step(item)
                                if out is not None:
                                    if type(out) is Token:
                                        yield out
                                    else:
                                        for ev in out:
                                            yield ev
                                    if self._stop is not None:
                                        raise self._stop
                        elif adapter is _TEXT:
                            append = parts.append
                            new = object.__new__
                            async for item in it:
                                if type(item) is str:
                                    if item:
                                        append(item)
                                        # object.__new__ + a slot store skips a Python-level
                                        # __init__ frame: ~40 ns of ~350 per token
                                        tok = new(Token)
                                        tok.text = item
                                        yield tok
                                        if self._stop is not None:
                                            raise self._stop
                                else:
                                    feed(item)  # raises INVALID_STREAM
                        else:
                            append = parts.append
                            new = object.__new__
                            for_side = self._side_events
                            async for item in it:
                                r = feed(item)
                                if type(r) is str:
                                    if r:
                                        append(r)
                                        tok = new(Token)
                                        tok.text = r
                                        yield tok
                                        if self._stop is not None:
                                            raise self._stop
                                elif r is not None:
                                    self._items += 1
                                    for ev in for_side(r):
                                        yield ev
                                else:
                                    self._items += 1
                    wd.disarm()
                    # ---- the end of the attempt ----------------------------------------------
                    if dedup is not None and not dedup.done:
                        tail = dedup.flush()
                        if dedup.removed:
                            st.deduplication_applied = True
                            st.overlap_removed = dedup.removed
                        if tail:
                            parts.append(tail)
                            tail_token = Token(tail)
                            self._consumer_event(tail_token, tail)
                            yield tail_token
                    finish: Finish = session.finish()
                    st.finish_reason = finish.finish_reason
                    if finish.usage is not None:
                        st.usage = finish.usage
                    if streaming_rules or detector is not None:
                        checked, drift_checked = self._tick(
                            streaming_rules, detector, reported_drift, checked, drift_checked,
                            force=True,
                        )
                    if (
                        self.detect_zero
                        and len(st.tool_calls) == tools_from
                        and len(st.data_outputs) == data_from
                        and not any(p.strip() for p in parts[delivered_from:])
                        and not (resume is not None and resume.checkpoint.strip())
                    ):
                        raise L0Error(
                            "the model produced no output"
                            if len(parts) == delivered_from
                            else "the model produced only whitespace",
                            ErrorCode.ZERO_OUTPUT,
                        )
                    if rules:
                        self._final_guardrails(rules)
                    if (
                        finish.finish_reason == "length"
                        and cont is not None
                        and cont.continue_on_length
                        and model_retries < self.retry.attempts
                        and model_retries + network_retries < self.retry.max_retries
                    ):
                        self.emit(T.FINISH_REASON, finishReason="length")
                        self._validated = len(parts)
                        raise L0Error(
                            "the model stopped at its output length limit; continuing",
                            ErrorCode.INCOMPLETE,
                            metadata={"finishReason": "length"},
                        )
                    if finish.finish_reason not in (None, "stop") and self.listeners:
                        self.emit(T.FINISH_REASON, finishReason=finish.finish_reason)
                    break  # success
                except (L0Error, Exception, asyncio.CancelledError) as raw_exc:
                    wd.disarm()
                    exc: BaseException = raw_exc
                    if isinstance(exc, asyncio.CancelledError):
                        exc = self._convert_cancel(exc)
                        if isinstance(exc, asyncio.CancelledError):
                            raise  # a real cancellation: never retried, never swallowed
                    err = classify(exc, _plugins.get_host().classify_hook)
                    if err is not exc and isinstance(exc, L0Error) is False:
                        pass
                    err.token_count = len(st.parts)
                    err.content_length = self._chars_at(len(st.parts))
                    err.model_retry_count = st.model_retry_count
                    err.network_retry_count = st.network_retry_count
                    err.fallback_index = index
                    err.context = self.context
                    st.errors.append(err)
                    errors_seen.append(err)
                    last_error = err
                    if err.code is ErrorCode.NETWORK_ERROR and self.listeners:
                        self.emit(T.NETWORK_ERROR, error=err.message, code=err.code.value,
                                  retryable=True)
                    # -- decide -------------------------------------------------------------
                    try:
                        action, delay, reason = await self._decide(
                            err, index, model_retries, network_retries
                        )
                    except asyncio.CancelledError as cancel:
                        raise self._stopped(cancel, errors_seen) from None
                    if action == "halt-bare":
                        bare = L0Error(
                            f"{err.code.value}: {err.message} - and the stream cannot be "
                            f"retried because it was given as an iterator; pass a factory (a "
                            f"function that returns a new stream)",
                            ErrorCode.INVALID_STREAM, context=self.context,
                        )
                        bare.__cause__ = err
                        errors_seen.append(bare)
                        err = bare
                    will_retry = action == "retry"
                    will_fallback = action == "fallback"
                    # what of this attempt's text is kept
                    keep = delivered_from
                    continuing = cont is not None and (will_retry or will_fallback)
                    if continuing:
                        keep = self._last_good(err, bool(streaming_rules or detector))
                    elif not (will_retry or will_fallback):
                        keep = len(st.parts)  # nothing more comes: keep what was delivered
                    strategy = (
                        Recovery.CONTINUE if continuing and keep > 0 else
                        Recovery.RETRY if will_retry else
                        Recovery.FALLBACK if will_fallback else Recovery.HALT
                    )
                    err.checkpoint = "".join(st.parts[:keep]) if keep else None
                    self.emit(
                        T.ERROR,
                        error=err.message,
                        errorCode=err.code.value,
                        failureType=err.failure_type.value,
                        recoveryStrategy=strategy.value,
                        willRetry=will_retry,
                        willFallback=will_fallback,
                        policy={
                            "retryEnabled": self.retry.max_retries > 0,
                            "fallbackEnabled": len(self.sources) > 1,
                            "maxRetries": self.retry.max_retries,
                            "maxFallbacks": len(self.sources) - 1,
                            "attempt": attempt,
                            "fallbackIndex": index,
                        },
                        _error=err,
                    )
                    if err.code is not ErrorCode.STREAM_ABORTED:  # the caller asked for it
                        error_event = ErrorEvent(err, will_retry, will_fallback)
                        self._consumer_event(error_event, None)
                        yield error_event
                    if err is not self._stop:
                        self._raise_if_stopped(errors_seen)
                    if not (will_retry or will_fallback):
                        if action == "halt-exhausted" and self.listeners:
                            self.emit(T.RETRY_GIVE_UP, attempt=attempt,
                                      maxAttempts=self._max_for(err), reason=reason)
                        final = self._final_error(err, errors_seen)
                        raise final from final.__cause__
                    # a restart forgets the attempt's tool calls and data with its text
                    dropped_calls = [] if continuing else st.tool_calls[tools_from:]
                    if len(st.parts) > keep or dropped_calls:
                        dropped = "".join(st.parts[keep:])
                        offset = self._chars_at(keep)
                        st._truncate(keep)
                        if not continuing:
                            del st.tool_calls[tools_from:]
                            del st.data_outputs[data_from:]
                        self.emit(T.DISCARD, attempt=attempt, fallbackIndex=index,
                                  offset=offset, length=len(dropped), reason=err.code.value,
                                  toolCalls=len(dropped_calls))
                        discard = Discard(dropped, offset, attempt, err.code.value)
                        self._consumer_event(discard, None)
                        yield discard
                        self._raise_if_stopped(errors_seen)
                    if continuing and keep > 0:
                        self._save_checkpoint(keep)
                        checkpoint = st.content
                        resume = self._resume(checkpoint, keep, attempt + 1 if will_retry else 1,
                                              index + (1 if will_fallback else 0))
                    else:
                        resume = None
                    if will_retry:
                        if KINDS[err.code].network_budget:
                            network_retries += 1
                            st.network_retry_count += 1
                        else:
                            model_retries += 1
                            st.model_retry_count += 1
                        if model_retries + network_retries == 1:
                            self.emit(T.RETRY_START, attempt=1, maxAttempts=self._max_for(err))
                        self.emit(T.RETRY_ATTEMPT, attempt=model_retries + network_retries,
                                  maxAttempts=self._max_for(err), reason=reason,
                                  delayMs=delay * 1000.0, isNetwork=KINDS[err.code].network_budget)
                        try:
                            await _close(it, src)
                            it = src = None
                            if delay > 0:
                                await backoff_sleep(delay)
                        except asyncio.CancelledError as cancel:
                            raise self._stopped(cancel, errors_seen) from None
                        self._raise_if_stopped(errors_seen)
                        attempt += 1
                        self.emit(T.ATTEMPT_START, attempt=attempt, isRetry=True,
                                  isFallback=False)
                    else:
                        if model_retries + network_retries > 0 or reason == "Retries exhausted":
                            self.emit(T.RETRY_GIVE_UP, attempt=attempt,
                                      maxAttempts=self._max_for(err), reason=reason)
                        try:
                            await _close(it, src)
                            it = src = None
                        except asyncio.CancelledError as cancel:
                            raise self._stopped(cancel, errors_seen) from None
                        self._raise_if_stopped(errors_seen)
                        self.emit(T.FALLBACK_START, fromIndex=index, toIndex=index + 1,
                                  reason=reason)
                        index += 1
                        attempt = 1
                        model_retries = network_retries = 0
                        self.emit(T.FALLBACK_MODEL_SELECTED, index=index, reason=reason)
                    if resume is not None:
                        st.resumed = True
                        st.continuation_used = True
                        self.emit(T.CONTINUATION_START, checkpoint=resume.checkpoint,
                                  tokenCount=resume.token_count)
                        self.emit(T.RESUME_START, checkpoint=resume.checkpoint,
                                  tokenCount=resume.token_count)
                finally:
                    wd.disarm()
                    await _close(it, src)
            # ---- success -----------------------------------------------------------------
            st.completed = True
            now = _mono()
            st.last_token_at = now if st.parts else None
            st.duration = now - self._mono0
            if model_retries + network_retries > 0:
                self.emit(T.RETRY_END, attempt=attempt, success=True)
            if index > 0:
                self.emit(T.FALLBACK_END, success=True, finalIndex=index)
            content = st.content
            if self.listeners:
                self.emit(T.COMPLETE, tokenCount=len(st.parts), contentLength=len(content),
                          _state=st)
            complete = Complete(content, st.usage, st.finish_reason)
            if self.callbacks is not None and self.callbacks.on_stream_event is not None:
                safe_call(self.callbacks.on_stream_event, complete)
            yield complete
        except asyncio.CancelledError:
            st.aborted = st.aborted or self._stop is not None
            raise
        except GeneratorExit:
            raise
        finally:
            self.finished = True
            waiter = self._close_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self._total_handle is not None:
                self._total_handle.cancel()
            if st.duration is None:
                st.duration = _mono() - self._mono0
            if self.listeners:
                self._end_events(index, last_error)

    # -- helpers used by the generator --------------------------------------------------

    def _chars_at(self, n_parts: int) -> int:
        """Characters in the first ``n_parts`` pieces (O(1) when all parts are joined)."""
        parts = self.state.parts
        if n_parts == len(parts):
            return len(self.state.content)
        return sum(map(len, parts[:n_parts]))

    def _consumer_event(self, event: Event, text: str | None) -> None:
        cbs = self.callbacks
        if cbs is None:
            return
        if text is not None and cbs.on_token is not None:
            safe_call(cbs.on_token, text)
        if cbs.on_stream_event is not None:
            safe_call(cbs.on_stream_event, event)

    def _resume(self, checkpoint: str, tokens: int, attempt: int, index: int) -> Resume:
        try:
            return Resume.build(checkpoint, tokens, attempt, index, self.build_prompt)
        except Exception as exc:
            log.warning("l0: build_continuation_prompt raised %r; using the default prompt", exc)
            return Resume.build(checkpoint, tokens, attempt, index, None)

    def _raise_if_stopped(self, seen: list[L0Error]) -> None:
        """End the session now if abort() or the total budget asked for it meanwhile."""
        stop = self._stop
        if stop is not None:
            final = self._final_error(stop, seen)
            raise final from final.__cause__

    def _stopped(self, cancel: asyncio.CancelledError, seen: list[L0Error]) -> BaseException:
        """A cancellation while recovering: our abort/timeout becomes its typed error."""
        converted = self._convert_cancel(cancel)
        if isinstance(converted, L0Error):
            return self._final_error(converted, seen)
        return converted

    def _countdown(self) -> int:
        n = self._interval
        if n:
            return n
        n = 1 << 30
        iv = self.intervals
        if self.guardrail_items:
            n = min(n, iv.guardrails)
        if self.drift_item:
            n = min(n, iv.drift)
        if self.continuation is not None and self.listeners:
            n = min(n, iv.checkpoint)
        self._interval = n
        return n

    def _pick_adapter(self, first: Any, src: Any) -> Adapter:
        hint = self.adapter_hint
        registry = None
        if hint is not None:
            if isinstance(hint, str):
                if hint == "text":
                    adapter: Adapter = _TEXT
                elif hint == "events":
                    adapter = _EVENTS
                else:
                    registry = _plugins.get_host().registry("adapters")
                    adapter = registry.get(hint)
            else:
                adapter = hint
            name = adapter.name
        elif first is _END or type(first) is str:
            adapter, name = _TEXT, "text"
        elif isinstance(first, Event):
            adapter, name = _EVENTS, "events"
        else:
            registry = _plugins.get_host().registry("adapters")
            for name, candidate in registry.items():
                try:
                    if candidate.detect(first):
                        adapter = candidate
                        break
                except Exception as exc:
                    log.warning("l0: adapter %s.detect raised %r; skipped", name, exc)
            else:
                raise L0Error(
                    f"no adapter understands stream items of type {type(first).__module__}."
                    f"{type(first).__qualname__}; installed adapters: "
                    f"{', '.join(registry.names())}. Install the provider's L0 package (for "
                    f"OpenAI: pip install l0-openai) or pass adapter=...",
                    ErrorCode.ADAPTER_NOT_FOUND,
                )
        if self.listeners:
            self.emit(T.ADAPTER_WRAP_START, streamType=type(src).__name__)
            self.emit(T.ADAPTER_DETECTED, adapterId=name)
            self.emit(T.ADAPTER_WRAP_END, adapterId=name)
        return adapter

    def _side_events(self, r: Any) -> list[Event]:
        events: list[Event] = [r] if isinstance(r, Event) else list(r)
        st = self.state
        for ev in events:
            if type(ev) is Token:  # text that came with other events in one item
                if ev.text:
                    st.parts.append(ev.text)
            elif isinstance(ev, ToolCall):
                st.tool_calls.append(ev)
                self.emit(T.TOOL_REQUESTED, toolName=ev.name, toolCallId=ev.id,
                          arguments=ev.arguments)
            elif isinstance(ev, Data):
                st.data_outputs.append(ev.data)
            elif isinstance(ev, Progress):
                st.last_progress = ev.data
            elif not isinstance(ev, Message):
                raise L0Error(
                    f"an adapter returned a {type(ev).__name__} event from feed(); adapters "
                    f"report text as str and errors by raising",
                    ErrorCode.INVALID_STREAM,
                )
            cbs = self.callbacks
            if cbs is not None and cbs.on_stream_event is not None:
                safe_call(cbs.on_stream_event, ev)
        return events

    def _tick_before(
        self,
        rules: list[Rule],
        detector: DriftDetector | None,
        reported: set[str],
        checked: int,
        drift_checked: int,
    ) -> tuple[int, int]:
        """``_tick`` before the newest part is delivered: if a check stops the attempt,
        that part never is."""
        try:
            return self._tick(rules, detector, reported, checked, drift_checked)
        except L0Error:
            self.state._truncate(len(self.state.parts) - 1)
            raise

    def _tick(
        self,
        rules: list[Rule],
        detector: DriftDetector | None,
        reported: set[str],
        checked: int,
        drift_checked: int,
        force: bool = False,
    ) -> tuple[int, int]:
        """Periodic work on the text since the last check: guardrails, drift, checkpoint.

        Each runs on its own interval (``force``: at the end of an attempt, on whatever
        is left), on the text added since it last ran.
        """
        st = self.state
        parts = st.parts
        n = len(parts)
        iv = self.intervals
        if rules and (n - checked >= iv.guardrails or (force and n > checked)):
            delta = "".join(parts[checked:n]) if n - checked > 1 else parts[checked]
            offset = self._g_off
            found: list[Violation] | None = None
            retired = False
            for rule in rules:
                try:
                    got = rule.check_delta(delta, offset)
                except Exception as exc:
                    log.warning("l0: guardrail %s raised %r; ignored", rule.name, exc)
                    continue
                if got:
                    if found is None:
                        found = []
                    found.extend(got)
                if not rule.streaming:  # nothing more to check while streaming
                    retired = True
            if retired:  # (in place: the caller's list; check_complete still runs)
                rules[:] = [r for r in rules if r.streaming]
            if found:
                self._apply_violations(found, streaming=True)
            checked = n
            self._g_off = offset + len(delta)
        if detector is not None and (
            n - drift_checked >= iv.drift or (force and n > drift_checked)
        ):
            delta = "".join(parts[drift_checked:n])
            offset = self._d_off
            self._d_off = offset + len(delta)
            drift_checked = n
            result: DriftResult | None = None
            try:
                result = detector.check_delta(delta, offset)
            except Exception as exc:
                log.warning("l0: drift detector raised %r; ignored", exc)
                if self.listeners:
                    self.emit(T.DRIFT_CHECK_SKIPPED, reason=f"the detector raised {exc!r}")
            else:
                new = [t for t in result.types if t not in reported] if result else []
                if new:
                    assert result is not None
                    reported.update(new)
                    st.drift_detected = True
                    st.drift_types.extend(new)
                    self.emit(T.DRIFT_CHECK_RESULT, detected=True, score=result.confidence,
                              types=new, metrics=dict.fromkeys(new, True), threshold=0.5)
                    if self.drift_action != "flag":
                        raise GuardrailError(
                            f"drift detected: {', '.join(new)}",
                            ErrorCode.DRIFT_DETECTED
                            if self.drift_action == "retry"
                            else ErrorCode.FATAL_GUARDRAIL_VIOLATION,
                            metadata={"driftTypes": new, "confidence": result.confidence},
                        )
                elif self.listeners:  # every check is reported; drift once, at its onset
                    self.emit(T.DRIFT_CHECK_RESULT, detected=False, score=0.0, types=[],
                              metrics={}, threshold=0.5)
        good = checked if rules else n
        if detector is not None and drift_checked < good:
            good = drift_checked
        self._validated = good
        if self.continuation is not None and good - st.checkpoint_parts >= iv.checkpoint:
            self._save_checkpoint(good)
        return checked, drift_checked

    def _save_checkpoint(self, n_parts: int) -> None:
        st = self.state
        st.checkpoint_parts = n_parts
        if self.listeners:
            self.emit(T.CHECKPOINT_SAVED, checkpoint=st.checkpoint, tokenCount=n_parts)

    def _apply_violations(self, found: list[Violation], *, streaming: bool) -> None:
        st = self.state
        for i, v in enumerate(found):
            st.violations.append(v)
            self.emit(T.GUARDRAIL_RULE_RESULT, index=i, ruleId=v.rule, passed=False,
                      violation=v.to_dict(), streaming=streaming, _violation=v)
        halting = [v for v in found if v.halts]
        if halting:
            v = halting[0]
            raise GuardrailError(
                f"guardrail {v.rule}: {v.message}", ErrorCode.FATAL_GUARDRAIL_VIOLATION,
                violations=halting,
            )
        errors = [v for v in found if v.severity == "error"]
        if errors:
            v = errors[0]
            raise GuardrailError(
                f"guardrail {v.rule}: {v.message}", ErrorCode.GUARDRAIL_VIOLATION,
                violations=errors,
            )

    def _final_guardrails(self, rules: list[Rule]) -> None:
        content = self.state.content
        started = _mono()
        self.emit(T.GUARDRAIL_PHASE_START, phase="post", ruleCount=len(rules))
        found: list[Violation] = []
        for i, rule in enumerate(rules):
            t0 = _mono()
            callback_id = f"cb_{i}"
            self.emit(T.GUARDRAIL_RULE_START, index=i, ruleId=rule.name, callbackId=callback_id)
            try:
                got = list(rule.check_complete(content) or ())
            except Exception as exc:
                log.warning("l0: guardrail %s raised %r; ignored", rule.name, exc)
                got = []
            if not got:
                self.emit(T.GUARDRAIL_RULE_RESULT, index=i, ruleId=rule.name, passed=True,
                          violation=None)
            found.extend(got)
            self.emit(T.GUARDRAIL_RULE_END, index=i, ruleId=rule.name, passed=not got,
                      callbackId=callback_id, durationMs=(_mono() - t0) * 1000.0)
        self.emit(T.GUARDRAIL_PHASE_END, phase="post", passed=not found,
                  violations=[v.to_dict() for v in found],
                  durationMs=(_mono() - started) * 1000.0)
        if found:
            self._apply_violations(found, streaming=False)

    def _last_good(self, err: L0Error, checks: bool) -> int:
        """How many parts are safe to continue from after ``err``.

        After a content failure (a guardrail, drift, empty output) only the last
        checkpoint is trusted; after a transport failure everything the streaming
        checks passed is (everything delivered, when there are no checks).
        """
        st = self.state
        if err.category is ErrorCategory.CONTENT and err.code is not ErrorCode.INCOMPLETE:
            keep = st.checkpoint_parts
            # a rule may decide a few tokens late: never keep text at or after the position
            # where a violation says the bad text begins
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
        return self._validated if checks else len(st.parts)

    def _max_for(self, err: L0Error) -> int:
        r = self.retry
        return r.network_attempts if KINDS[err.code].network_budget else r.attempts

    async def _decide(
        self, err: L0Error, index: int, model_retries: int, network_retries: int
    ) -> tuple[str, float, str]:
        """``(action, delay, reason)``; action is retry, fallback, halt or halt-exhausted."""
        has_fallback = index + 1 < len(self.sources)
        kind = KINDS[err.code]
        r = self.retry
        if kind.recovery is Recovery.HALT or self._stop is not None:
            return "halt", 0.0, f"{err.code.value} is not recoverable"
        if kind.recovery is Recovery.FALLBACK:
            if has_fallback:
                return "fallback", 0.0, f"{err.code.value} needs another model"
            return "halt", 0.0, f"{err.code.value} and no fallback left"
        source = self.sources[index]
        budget = r.network_attempts if kind.network_budget else r.attempts
        used = network_retries if kind.network_budget else model_retries
        exhausted = used >= budget or model_retries + network_retries >= r.max_retries
        if r.retry_on is not None and err.code not in r.retry_on:
            exhausted = True
        if source.bare and not exhausted:  # an iterator cannot be read again
            if has_fallback:
                return "fallback", 0.0, "the stream was an iterator and cannot be retried"
            return "halt-bare", 0.0, "the stream was an iterator and cannot be retried"
        if not exhausted and err.retry_after is not None and err.retry_after > r.max_retry_after:
            if has_fallback:
                return "fallback", 0.0, (
                    f"Retry-After of {err.retry_after:g}s is above max_retry_after"
                )
            return "halt", 0.0, f"Retry-After of {err.retry_after:g}s is above max_retry_after"
        if not exhausted and r.should_retry is not None:
            try:
                allowed = await maybe_await(
                    r.should_retry(err, self.state, used, err.category.value)
                )
            except Exception as exc:
                log.warning("l0: should_retry raised %r; not retrying", exc)
                allowed = False
            if not allowed:
                exhausted = True
        if exhausted:
            if has_fallback:
                return "fallback", 0.0, "Retries exhausted"
            return "halt-exhausted", 0.0, "Retries exhausted"
        delay = r.delay_for(err, used)
        if r.calculate_delay is not None:
            ctx = RetryContext(
                attempt=used, error=err, is_network=kind.network_budget,
                model_retry_count=model_retries, network_retry_count=network_retries,
                total_retries=model_retries + network_retries, base_delay=r.base_delay,
                max_delay=r.max_delay, default_delay=delay,
            )
            try:
                custom = await maybe_await(r.calculate_delay(ctx))
            except Exception as exc:
                log.warning("l0: calculate_delay raised %r; using the default delay", exc)
                custom = None
            if custom is not None:
                delay = max(0.0, float(custom))
        return "retry", delay, err.message

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
        wd = self._wd
        if wd is not None and wd.fired is not None:
            which, wd.fired = wd.fired, None
            seconds = wd.initial if which == "initial" else wd.inter
            assert seconds is not None
            self.emit(T.TIMEOUT_TRIGGERED, timeoutType=which, elapsedMs=seconds * 1000.0,
                      configuredMs=seconds * 1000.0)
            code = (ErrorCode.INITIAL_TOKEN_TIMEOUT if which == "initial"
                    else ErrorCode.INTER_TOKEN_TIMEOUT)
            what = "first token" if which == "initial" else "next token"
            return TimeoutError(f"no {what} within {seconds:g}s", code, timeout=seconds)
        if self._stop is not None:
            return self._stop
        return exc

    def _final_error(self, err: L0Error, seen: list[L0Error]) -> L0Error:
        if err.code is ErrorCode.STREAM_ABORTED:
            st = self.state
            st.aborted = True
            self.emit(T.ABORT_COMPLETED, tokenCount=len(st.parts), contentLength=len(st.content))
        if len(self.sources) > 1 and self.state.fallback_index == len(self.sources) - 1 and (
            KINDS[err.code].recovery is not Recovery.HALT
        ):
            final = L0Error(
                f"all {len(self.sources)} streams failed; the last error: {err.message}",
                ErrorCode.ALL_STREAMS_EXHAUSTED,
                fallback_index=self.state.fallback_index,
                token_count=err.token_count,
                metadata={"errors": [e.code.value for e in seen]},
                context=self.context,
            )
            final.__cause__ = err
            return final
        return err

    def _end_events(self, index: int, last_error: L0Error | None) -> None:
        st = self.state
        if not st.completed and index > 0:
            self.emit(T.FALLBACK_END, success=False, finalIndex=index)
        end = self._wall0 + (_mono() - self._mono0) * 1000.0
        self.emit(
            T.SESSION_SUMMARY,
            tokenCount=len(st.parts),
            startTs=self._wall0,
            endTs=end,
            driftDetected=st.drift_detected,
            guardrailViolations=len(st.violations),
            fallbackDepth=index,
            retryCount=st.retry_count,
            checkpointsCreated=st.checkpoint_parts > 0,
            completed=st.completed,
            errorCode=last_error.code.value if last_error and not st.completed else None,
        )
        self.emit(T.SESSION_END, completed=st.completed)


_END: Any = object()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _observer_listener(observer: Any) -> Callable[[ObservabilityEvent], Any]:
    """A per-session listener from a registered name, a factory spec, a class or an object."""
    if isinstance(observer, str):
        observer = _plugins.get_host().registry("observers").get(observer)
    if hasattr(observer, "create"):
        made = observer.create()
    elif isinstance(observer, type) or (
        callable(observer) and not hasattr(observer, "on_event") and hasattr(observer, "name")
    ):
        made = observer()
    else:
        made = observer
    on_event = getattr(made, "on_event", None)
    if callable(on_event):
        return on_event  # type: ignore[no-any-return]
    if callable(made):
        return made  # type: ignore[no-any-return]
    raise TypeError(f"not an observer: {observer!r} (needs on_event(event) or to be callable)")


class Stream:
    """What ``l0.run`` returns: iterate it for events, or ``await stream.read()``.

    Use ``async with`` (or iterate to the end) so that the upstream is closed as
    soon as you stop; ``abort()`` stops it from anywhere, even during a stalled
    read, and the iteration then raises ``STREAM_ABORTED``.
    """

    __slots__ = ("__weakref__", "_session")

    def __init__(self, session: _Session) -> None:
        self._session = session

    def __aiter__(self) -> AsyncIterator[Event]:
        # Only a weak reference is kept: when a consumer ``break``s out of ``async for``
        # and drops the iterator, asyncio finalises the generator at once, which closes
        # the upstream even while this Stream object is still referenced.
        gen = self._session._gen() if self._session._gen is not None else None
        if gen is None:
            gen = self._session.events()
            self._session._gen = weakref.ref(gen)
        return gen

    @property
    def state(self) -> State:
        return self._session.state

    @property
    def id(self) -> str:
        """The session's UUIDv7 (the ``stream_id`` of its observability events)."""
        return self._session.stream_id

    @property
    def errors(self) -> list[L0Error]:
        """Every error of every attempt, in order."""
        return self._session.state.errors

    def raw(self) -> list[Any]:
        """The provider's raw items, when the session was started with ``keep_raw=True``."""
        chunks = self._session.state.raw_chunks
        if chunks is None:
            raise L0Error(
                "raw chunks are kept only on request: pass keep_raw=True to l0.run",
                ErrorCode.FEATURE_NOT_ENABLED,
            )
        return chunks

    async def read(self) -> str:
        """Consume the stream and return the delivered text (raises on failure)."""
        async for _ in self:
            pass
        return self._session.state.content

    def abort(self, reason: str = "aborted by the caller") -> None:
        """Stop the session: a pending read is interrupted and the stream raises
        ``STREAM_ABORTED``."""
        s = self._session
        if s.finished or s.state.aborted or s.state.completed:
            return
        s.state.aborted = True
        if s.started:  # before the start, SESSION_START comes first, then this
            s.emit(T.ABORT_REQUESTED, source="user")
        s.request_stop(L0Error(reason, ErrorCode.STREAM_ABORTED))

    async def aclose(self) -> None:
        """Stop iterating and close the upstream now."""
        s = self._session
        gen = s._gen() if s._gen is not None else None
        if gen is not None:
            await gen.aclose()
        elif s.started and not s.finished:
            # the consumer dropped the iterator: asyncio is finalising it; wait for that
            s._close_waiter = asyncio.get_running_loop().create_future()
            await s._close_waiter
        s.finished = True

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __await__(self) -> Generator[Any, None, Stream]:
        async def itself() -> Stream:
            return self

        return itself().__await__()

    def __repr__(self) -> str:
        return f"<l0 Stream {self._session.state!r}>"


def run(
    stream: StreamFactory | AsyncIterator[Any],
    *,
    fallbacks: Iterable[StreamFactory] = (),
    retry: Retry | str | None = None,
    timeout: Timeout | None = None,
    guardrails: Iterable[Any] | None = None,
    drift: Any = None,
    drift_action: str = "retry",
    check_intervals: CheckIntervals | None = None,
    continue_from_last_good_token: bool | Continuation = False,
    build_continuation_prompt: Callable[[str], str] | None = None,
    adapter: Any = None,
    adapter_options: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    keep_raw: bool = False,
    detect_zero_tokens: bool = True,
    on_event: Callable[[ObservabilityEvent], Any] | None = None,
    observers: Iterable[Any] | None = None,
    on_start: Callable[[int, bool, bool], Any] | None = None,
    on_complete: Callable[[State], Any] | None = None,
    on_error: Callable[[L0Error, bool, bool], Any] | None = None,
    on_stream_event: Callable[[Event], Any] | None = None,
    on_violation: Callable[[Violation], Any] | None = None,
    on_retry: Callable[[int, str], Any] | None = None,
    on_fallback: Callable[[int, str], Any] | None = None,
    on_resume: Callable[[str, int], Any] | None = None,
    on_checkpoint: Callable[[str, int], Any] | None = None,
    on_timeout: Callable[[str, float], Any] | None = None,
    on_abort: Callable[[int, int], Any] | None = None,
    on_drift: Callable[[list[str], float], Any] | None = None,
    on_tool_call: Callable[[str, str, Mapping[str, Any]], Any] | None = None,
    on_token: Callable[[str], Any] | None = None,
    config: Any = None,
) -> Stream:
    """Run a stream through L0. See ``docs/runtime.md`` for every option.

    ``stream`` is a factory: a function returning an async iterator (or an
    awaitable of one), called afresh for every attempt. A function with one
    parameter receives a :class:`Resume` (or ``None``) so it can continue from
    the last good token. Options left out come from the project configuration
    (``l0.toml``, ``[tool.l0]``, ``L0_*`` variables).
    """
    cfg = defaults_for_run(config)
    retry_policy: Retry
    if retry is None:
        retry_policy = cfg.retry
    elif isinstance(retry, str):
        retry_policy = _plugins.get_host().registry("retry_policies").get(retry)()
    else:
        retry_policy = retry
    if timeout is None:
        timeout = cfg.timeout
    if guardrails is None:
        guardrails = cfg.guardrails
    if adapter is None:
        adapter = cfg.adapter
    listeners: list[Callable[[ObservabilityEvent], Any]] = []
    if on_event is not None:
        listeners.append(on_event)
    chosen = observers if observers is not None else cfg.observers
    if chosen:
        listeners.extend(_observer_listener(observer) for observer in chosen)
    callbacks = None
    if not (  # the common case, checked without building a dict
        on_start is None and on_complete is None and on_error is None
        and on_stream_event is None and on_violation is None and on_retry is None
        and on_fallback is None and on_resume is None and on_checkpoint is None
        and on_timeout is None and on_abort is None and on_drift is None
        and on_tool_call is None and on_token is None
    ):
        callbacks = Callbacks({
            "on_start": on_start, "on_complete": on_complete, "on_error": on_error,
            "on_stream_event": on_stream_event, "on_violation": on_violation,
            "on_retry": on_retry, "on_fallback": on_fallback, "on_resume": on_resume,
            "on_checkpoint": on_checkpoint, "on_timeout": on_timeout, "on_abort": on_abort,
            "on_drift": on_drift, "on_tool_call": on_tool_call, "on_token": on_token,
        })
        if callbacks.wants_events:
            listeners.append(callbacks)
    continuation: Continuation | None
    if continue_from_last_good_token is True:
        continuation = Continuation()
    elif isinstance(continue_from_last_good_token, Continuation):
        continuation = continue_from_last_good_token if continue_from_last_good_token.enabled \
            else None
    else:
        continuation = None
    if drift_action not in ("flag", "retry", "halt"):
        raise ValueError(f"drift_action must be flag, retry or halt, not {drift_action!r}")
    sources = [_Factory(stream)]
    if fallbacks:
        sources.extend(_Factory(f) for f in fallbacks)
    session = _Session(
        sources,
        retry=retry_policy,
        timeout=timeout or _DEFAULT_TIMEOUT,
        guardrails=guardrails,
        drift=drift,
        drift_action=drift_action,
        intervals=check_intervals or _DEFAULT_INTERVALS,
        continuation=continuation,
        build_continuation_prompt=build_continuation_prompt,
        adapter=adapter,
        adapter_options=adapter_options,
        context=context,
        keep_raw=keep_raw,
        detect_zero_tokens=detect_zero_tokens,
        listeners=listeners,
        callbacks=callbacks,
    )
    return Stream(session)


"""Lifecycle callbacks, derived from observability events in one place.

Every ``on_*`` callback fires because an observability event was emitted (or,
for ``on_token`` and ``on_stream_event``, because a consumer event was), so the
callbacks can never disagree with the events. Callbacks may be plain functions
or coroutine functions. A coroutine is scheduled as a task and never awaited
by the stream; an exception in any callback is logged and never reaches the
stream.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from l0_core.events import Event, ObservabilityEvent
from l0_core.events import ObservabilityEventType as T

__all__ = ["CALLBACK_NAMES", "Callbacks", "Isolation", "safe_call"]

log = logging.getLogger("l0")

CALLBACK_NAMES = (
    "on_start",
    "on_complete",
    "on_error",
    "on_stream_event",
    "on_violation",
    "on_retry",
    "on_fallback",
    "on_resume",
    "on_checkpoint",
    "on_timeout",
    "on_abort",
    "on_drift",
    "on_tool_call",
    "on_token",
)

_pending: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("l0: an async callback raised %r", task.exception())


def safe_call(fn: Callable[..., Any], *args: Any) -> None:
    """Call user code outside a session: log its exception; schedule its coroutine."""
    try:
        result = fn(*args)
    except Exception as exc:
        log.warning("l0: callback %s raised %r", getattr(fn, "__name__", fn), exc)
        return
    if result is not None and inspect.isawaitable(result):
        _schedule(result, _done)


def _schedule(result: Any, done: Callable[[asyncio.Task[Any]], None]) -> None:
    try:
        task = asyncio.ensure_future(result)
    except Exception as exc:  # no running loop, or not a real awaitable
        log.warning("l0: could not schedule a callback's coroutine: %r", exc)
        return
    _pending.add(task)
    task.add_done_callback(done)


class Isolation:
    """Calls a session's user code (observers, callbacks) so its failures never reach
    the stream.

    The first failure of each named callable in a session is logged with the name
    and the traceback; later ones are only counted in ``counts`` (which the
    session exposes as ``state.callback_errors``), so a broken observer cannot
    flood the log once per event.
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def call(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            result = fn(*args)
        except Exception as exc:
            self.failed(name, exc)
            return
        if result is not None and inspect.isawaitable(result):
            _schedule(result, lambda task: self._async_done(name, task))

    def _async_done(self, name: str, task: asyncio.Task[Any]) -> None:
        _pending.discard(task)
        if not task.cancelled():
            exc = task.exception()
            if isinstance(exc, Exception):
                self.failed(name, exc)

    def failed(self, name: str, exc: Exception) -> None:
        seen = self.counts.get(name, 0)
        self.counts[name] = seen + 1
        if not seen:
            log.warning(
                "l0: %s raised %r; the stream goes on, and further errors from %s in this "
                "session are counted in state.callback_errors, not logged",
                name, exc, name, exc_info=exc,
            )


class Callbacks:
    """The user's callbacks, as one observability listener."""

    __slots__ = (*CALLBACK_NAMES, "isolation")

    on_start: Callable[..., Any] | None
    on_complete: Callable[..., Any] | None
    on_error: Callable[..., Any] | None
    on_stream_event: Callable[..., Any] | None
    on_violation: Callable[..., Any] | None
    on_retry: Callable[..., Any] | None
    on_fallback: Callable[..., Any] | None
    on_resume: Callable[..., Any] | None
    on_checkpoint: Callable[..., Any] | None
    on_timeout: Callable[..., Any] | None
    on_abort: Callable[..., Any] | None
    on_drift: Callable[..., Any] | None
    on_tool_call: Callable[..., Any] | None
    on_token: Callable[..., Any] | None

    def __init__(
        self,
        callbacks: Mapping[str, Callable[..., Any] | None],
        isolation: Isolation | None = None,
    ) -> None:
        for name in CALLBACK_NAMES:
            setattr(self, name, callbacks.get(name))
        self.isolation = isolation if isolation is not None else Isolation()

    @property
    def wants_events(self) -> bool:
        return any(
            getattr(self, n) is not None
            for n in CALLBACK_NAMES
            if n not in ("on_token", "on_stream_event")
        )

    def on_consumer_event(self, event: Event) -> None:
        if self.on_stream_event is not None:
            self.isolation.call("on_stream_event", self.on_stream_event, event)

    def __call__(self, ev: ObservabilityEvent) -> None:
        t = ev.type
        m = ev.meta
        call = self.isolation.call
        if t is T.SESSION_START or t is T.ATTEMPT_START:
            if self.on_start is not None:
                call("on_start", self.on_start, m["attempt"], m["isRetry"], m["isFallback"])
        elif t is T.FALLBACK_START:
            if self.on_start is not None:
                call("on_start", self.on_start, 1, False, True)
            if self.on_fallback is not None:
                call("on_fallback", self.on_fallback, m["toIndex"] - 1, m["reason"])
        elif t is T.RETRY_ATTEMPT:
            if self.on_retry is not None:
                call("on_retry", self.on_retry, m["attempt"] + 1, m["reason"])
        elif t is T.ERROR:
            if self.on_error is not None:
                call("on_error", self.on_error, m["_error"], m["willRetry"], m["willFallback"])
        elif t is T.COMPLETE:
            if self.on_complete is not None:
                call("on_complete", self.on_complete, m["_state"])
        elif t is T.CHECKPOINT_SAVED:
            if self.on_checkpoint is not None:
                call("on_checkpoint", self.on_checkpoint, m["checkpoint"], m["tokenCount"])
        elif t is T.RESUME_START:
            if self.on_resume is not None:
                call("on_resume", self.on_resume, m["checkpoint"], m["tokenCount"])
        elif t is T.TIMEOUT_TRIGGERED:
            if self.on_timeout is not None:
                call("on_timeout", self.on_timeout, m["timeoutType"], m["elapsedMs"] / 1000.0)
        elif t is T.ABORT_COMPLETED:
            if self.on_abort is not None:
                call("on_abort", self.on_abort, m["tokenCount"], m["contentLength"])
        elif t is T.GUARDRAIL_RULE_RESULT:
            if self.on_violation is not None and not m["passed"]:
                call("on_violation", self.on_violation, m["_violation"])
        elif t is T.DRIFT_CHECK_RESULT:
            if self.on_drift is not None and m["detected"]:
                call("on_drift", self.on_drift, list(m["types"]), m["score"])
        elif t is T.TOOL_REQUESTED and self.on_tool_call is not None:
            call("on_tool_call", self.on_tool_call, m["toolName"], m["toolCallId"], m["arguments"])

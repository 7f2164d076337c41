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
        if result is not None:
            self.scheduled(name, result)

    def scheduled(self, name: str, result: Any) -> None:
        """Run what a callback returned when it is a coroutine (not awaited by the stream)."""
        if inspect.isawaitable(result):
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
        handler = _HANDLERS.get(ev.type)
        if handler is not None:
            handler(self, ev.meta)

    def _call(self, name: str, *args: Any) -> None:
        fn = getattr(self, name)
        if fn is not None:
            self.isolation.call(name, fn, *args)

    def _start(self, m: Mapping[str, Any]) -> None:
        self._call("on_start", m["attempt"], m["isRetry"], m["isFallback"])

    def _fallback(self, m: Mapping[str, Any]) -> None:
        self._call("on_start", 1, False, True)
        self._call("on_fallback", m["toIndex"] - 1, m["reason"])

    def _retry(self, m: Mapping[str, Any]) -> None:
        self._call("on_retry", m["attempt"] + 1, m["reason"])

    def _error(self, m: Mapping[str, Any]) -> None:
        self._call("on_error", m["_error"], m["willRetry"], m["willFallback"])

    def _complete(self, m: Mapping[str, Any]) -> None:
        self._call("on_complete", m["_state"])

    def _checkpoint(self, m: Mapping[str, Any]) -> None:
        self._call("on_checkpoint", m["checkpoint"], m["tokenCount"])

    def _resume(self, m: Mapping[str, Any]) -> None:
        self._call("on_resume", m["checkpoint"], m["tokenCount"])

    def _timeout(self, m: Mapping[str, Any]) -> None:
        self._call("on_timeout", m["timeoutType"], m["elapsedMs"] / 1000.0)

    def _abort(self, m: Mapping[str, Any]) -> None:
        self._call("on_abort", m["tokenCount"], m["contentLength"])

    def _violation(self, m: Mapping[str, Any]) -> None:
        if not m["passed"]:
            self._call("on_violation", m["_violation"])

    def _drift(self, m: Mapping[str, Any]) -> None:
        if m["detected"]:
            self._call("on_drift", list(m["types"]), m["score"])

    def _tool(self, m: Mapping[str, Any]) -> None:
        self._call("on_tool_call", m["toolName"], m["toolCallId"], m["arguments"])


# Which observability event each lifecycle callback derives from: the one place where
# callbacks and events are tied together.
_HANDLERS: dict[T, Callable[[Callbacks, Mapping[str, Any]], None]] = {
    T.SESSION_START: Callbacks._start,
    T.ATTEMPT_START: Callbacks._start,
    T.FALLBACK_START: Callbacks._fallback,
    T.RETRY_ATTEMPT: Callbacks._retry,
    T.ERROR: Callbacks._error,
    T.COMPLETE: Callbacks._complete,
    T.CHECKPOINT_SAVED: Callbacks._checkpoint,
    T.RESUME_START: Callbacks._resume,
    T.TIMEOUT_TRIGGERED: Callbacks._timeout,
    T.ABORT_COMPLETED: Callbacks._abort,
    T.GUARDRAIL_RULE_RESULT: Callbacks._violation,
    T.DRIFT_CHECK_RESULT: Callbacks._drift,
    T.TOOL_REQUESTED: Callbacks._tool,
}

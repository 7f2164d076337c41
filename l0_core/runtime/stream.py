"""``l0.run()`` and the :class:`Stream` it returns."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from typing import Any

from l0_core.errors import ConfigError, ErrorCode, L0Error
from l0_core.events import Event, ObservabilityEvent
from l0_core.events import ObservabilityEventType as T
from l0_core.guardrails.rule import Violation
from l0_core.runtime.arguments import check_run_arguments
from l0_core.runtime.continuation import Continuation
from l0_core.runtime.lifecycle import CALLBACK_NAMES, Callbacks, Isolation
from l0_core.runtime.options import CheckIntervals, Timeout
from l0_core.runtime.retry import Retry
from l0_core.runtime.session import Listener, Session
from l0_core.runtime.sources import Source
from l0_core.runtime.state import State

__all__ = ["Stream", "observe_every_session", "run"]

StreamFactory = Callable[..., Any]

_NO_CALLBACKS: Mapping[str, Any] = {}
_defaults_for_run: Callable[[Any], Any] | None = None
_DEFAULT_TIMEOUT: Timeout | None = None
_DEFAULT_INTERVALS: CheckIntervals | None = None


class Stream:
    """What ``l0.run`` returns: iterate it for events, or ``await stream.read()``.

    Use ``async with`` (or iterate to the end) so that the upstream is closed as
    soon as you stop; ``abort()`` stops it from anywhere, even during a stalled
    read, and the iteration then raises ``STREAM_ABORTED``; ``aclose()`` stops it
    quietly, from any task.
    """

    __slots__ = ("__weakref__", "_session")

    def __init__(self, session: Session) -> None:
        self._session = session

    def __aiter__(self) -> AsyncIterator[Event]:
        # Only a weak reference is kept: when a consumer ``break``s out of ``async for``
        # and drops the iterator, asyncio finalises the generator at once, which closes
        # the upstream even while this Stream object is still referenced.
        s = self._session
        gen = s.gen() if s.gen is not None else None
        if gen is None:
            gen = s.events()
            s.gen = weakref.ref(gen)
        return gen

    @property
    def state(self) -> State:
        return self._session.state

    @property
    def id(self) -> str:
        """The session's UUIDv7 (the ``stream_id`` of its observability events)."""
        return self._session.stream_id

    @property
    def recording(self) -> Any:
        """The session's recorder when ``record=...`` was given (``await
        stream.recording.wait()`` waits until it is stored), else ``None``."""
        return self._session.recorder

    @property
    def errors(self) -> list[L0Error]:
        """Every error of every attempt, in order."""
        return self._session.state.errors

    @property
    def finished(self) -> bool:
        """Whether the session is over (completed, failed, aborted or closed)."""
        return self._session.finished

    @property
    def failure(self) -> L0Error | None:
        """What the session ended with when it failed (``None`` otherwise, or not yet)."""
        return self._session.failure

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
        """Consume the stream and return the delivered text (raises on failure).

        Reading a finished stream again returns the same text (or raises the same
        error) without running anything.
        """
        s = self._session
        if not s.finished:
            async for _ in self:
                pass
        if s.failure is not None:
            raise s.failure
        return s.state.content

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
        """Stop iterating and close the upstream now, from any task.

        When another task is reading the stream at this moment, its pending read
        is interrupted and its iteration simply ends.
        """
        s = self._session
        gen = s.gen() if s.gen is not None else None
        if gen is not None and not s.finished:
            try:
                await gen.aclose()
            except RuntimeError:  # another task is inside the generator right now
                s.closing = True
                s.close_waiter = asyncio.get_running_loop().create_future()
                s.request_stop(L0Error("the stream was closed", ErrorCode.STREAM_ABORTED))
                await s.close_waiter
        elif s.started and not s.finished:
            # the consumer dropped the iterator: asyncio is finalising it; wait for that
            s.close_waiter = asyncio.get_running_loop().create_future()
            await s.close_waiter
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
    guardrails: Iterable[Any] | str | None = None,
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
    record: Any = False,
    record_text: bool = True,
    record_timing: str = "tick",
) -> Stream:
    """Run a stream through L0. See ``docs/runtime.md`` for every option.

    ``stream`` is a factory: a function returning an async iterator (or an
    awaitable of one), called afresh for every attempt. A factory whose first
    parameter is required (or named ``resume``, or annotated ``Resume``) receives
    a :class:`Resume` (or ``None``) so it can continue from the last good token.
    Options left out come from the project configuration (``l0.toml``,
    ``[tool.l0]``, ``L0_*`` variables). Wrong arguments raise ``ConfigError`` here,
    not while the stream is read. ``record=True`` (the configured store), a store
    URL or a store object records the session (``docs/recording.md``);
    ``record_timing="token"`` records each token's own time (``"tick"``: a run's).
    """
    given = (on_start, on_complete, on_error, on_stream_event, on_violation, on_retry,
             on_fallback, on_resume, on_checkpoint, on_timeout, on_abort, on_drift,
             on_tool_call, on_token)  # in the order of CALLBACK_NAMES
    callbacks_given: Mapping[str, Any] = _NO_CALLBACKS
    if given.count(None) != len(given):
        callbacks_given = dict(zip(CALLBACK_NAMES, given, strict=True))
    check_run_arguments(
        stream=stream, fallbacks=fallbacks, retry=retry, timeout=timeout, guardrails=guardrails,
        drift_action=drift_action, check_intervals=check_intervals,
        continue_from_last_good_token=continue_from_last_good_token,
        build_continuation_prompt=build_continuation_prompt, adapter=adapter,
        adapter_options=adapter_options, context=context, observers=observers,
        callbacks=callbacks_given, record_timing=record_timing,
    )
    return Stream(_session(
        _configuration(config), stream, fallbacks, callbacks_given, on_event, observers,
        record=record, record_text=record_text, record_timing=record_timing, retry=retry,
        timeout=timeout, guardrails=guardrails, drift=drift, drift_action=drift_action,
        check_intervals=check_intervals, continuation=continue_from_last_good_token,
        build_continuation_prompt=build_continuation_prompt, adapter=adapter,
        adapter_options=adapter_options, context=context, keep_raw=keep_raw,
        detect_zero_tokens=detect_zero_tokens))


def _session(
    cfg: Any, stream: Any, fallbacks: Iterable[StreamFactory], callbacks_given: Mapping[str, Any],
    on_event: Callable[[ObservabilityEvent], Any] | None, observers: Iterable[Any] | None, *,
    record: Any, record_text: bool, record_timing: str, retry: Retry | str | None,
    timeout: Timeout | None, guardrails: Any, adapter: Any, check_intervals: CheckIntervals | None,
    continuation: bool | Continuation, **options: Any,
) -> Session:
    """The session of one ``run()`` call, its arguments checked: options left out are
    taken from the configuration ``cfg``, listeners and the recorder attached."""
    isolation = Isolation()
    callbacks = None
    if callbacks_given is not _NO_CALLBACKS:
        callbacks = Callbacks(callbacks_given, isolation)
    listeners = _listeners(on_event, observers if observers is not None else cfg.observers,
                           callbacks)
    sources = [Source(stream), *(Source(f) for f in fallbacks or ())]
    retry_policy = _retry_policy(retry, cfg.retry)
    timeout_ = timeout or cfg.timeout or _default_timeout()
    guardrails = guardrails if guardrails is not None else cfg.guardrails
    adapter = adapter if adapter is not None else cfg.adapter
    recorder = None
    if record is not False and record is not None:
        from l0_core.record.recorder import start_recording

        recorder = start_recording(
            record, record_text, cfg, sources, retry=retry_policy, timeout=timeout_,
            guardrails=guardrails, drift=options["drift"], continuation=continuation,
            adapter=adapter, timing=record_timing)
        listeners.append(("recorder", recorder))
    return Session(
        sources, retry=retry_policy, timeout=timeout_, guardrails=guardrails,
        intervals=check_intervals or _default_intervals(),
        continuation=_continuation(continuation), adapter=adapter, listeners=listeners,
        token_listener=on_event, callbacks=callbacks, isolation=isolation, recorder=recorder,
        **options,
    )


def _configuration(explicit: Any) -> Any:
    """The project configuration (``l0.toml``...), loaded on the first ``run()``: its
    module needs pydantic, which ``import l0_core`` does not load."""
    global _defaults_for_run
    if _defaults_for_run is None:
        from l0_core.plugins.config import defaults_for_run

        _defaults_for_run = defaults_for_run
    return _defaults_for_run(explicit)


# Observers added to every session of the process, each with its "unless" test.
_EVERY_SESSION: list[tuple[Any, Callable[[Iterable[Any]], bool] | None]] = []


def observe_every_session(
    observer: Any, *, unless: Callable[[Iterable[Any]], bool] | None = None
) -> Callable[[], None]:
    """Add ``observer`` to every session this process runs from now on.

    For integrations that instrument an application without changing its code (an
    OpenTelemetry instrumentor, say). ``observer`` is what ``observers=[...]`` takes (a
    registered name, a class, an object with ``create()`` or ``on_event``);
    ``unless(observers)`` may skip sessions whose own ``observers`` already cover it.
    Returns a function that removes it again.
    """
    entry = (observer, unless)
    _EVERY_SESSION.append(entry)

    def remove() -> None:
        if entry in _EVERY_SESSION:
            _EVERY_SESSION.remove(entry)

    return remove


def _listeners(
    on_event: Callable[[ObservabilityEvent], Any] | None,
    observers: Iterable[Any] | None,
    callbacks: Callbacks | None,
) -> list[Listener]:
    """The session's observability listeners, each with a name for the logs."""
    listeners: list[Listener] = []
    if on_event is not None:
        listeners.append(("on_event", on_event))
    if observers:
        listeners.extend(_observer_listener(observer) for observer in observers)
    for observer, unless in _EVERY_SESSION:
        if unless is None or not unless(observers or ()):
            listeners.append(_observer_listener(observer))
    if callbacks is not None and callbacks.wants_events:
        listeners.append(("callbacks", callbacks))
    return listeners


def observability_listeners(
    on_event: Callable[[ObservabilityEvent], Any] | None,
    observers: Iterable[Any] | None,
    config: Any = None,
) -> list[Listener]:
    """The listeners a session started with these options would have: ``on_event``, the
    ``observers`` (the configured ones, ``l0.toml``..., when ``None``) and those added by
    :func:`observe_every_session`. For code that emits events of its own next to
    sessions (the orchestrations of :mod:`l0_core.multi`)."""
    if observers is None:
        observers = _configuration(config).observers
    return _listeners(on_event, observers, None)


def _retry_policy(retry: Retry | str | None, configured: Retry) -> Retry:
    if retry is None:
        return configured
    if isinstance(retry, str):
        from l0_core.plugins.host import get_host

        policy: Retry = get_host().registry("retry_policies").get(retry)()
        return policy
    return retry


def _continuation(option: bool | Continuation) -> Continuation | None:
    if option is True:
        return Continuation()
    if isinstance(option, Continuation):
        return option if option.enabled else None
    return None


def _default_timeout() -> Timeout:
    global _DEFAULT_TIMEOUT
    if _DEFAULT_TIMEOUT is None:
        _DEFAULT_TIMEOUT = Timeout()
    return _DEFAULT_TIMEOUT


def _default_intervals() -> CheckIntervals:
    global _DEFAULT_INTERVALS
    if _DEFAULT_INTERVALS is None:
        _DEFAULT_INTERVALS = CheckIntervals()
    return _DEFAULT_INTERVALS


def _observer_listener(observer: Any) -> Listener:
    """A per-session listener from a registered name, a factory spec, a class or an object."""
    name = observer if isinstance(observer, str) else getattr(
        observer, "name", getattr(observer, "__name__", type(observer).__name__))
    if isinstance(observer, str):
        from l0_core.plugins.host import get_host

        observer = get_host().registry("observers").get(observer)
    if hasattr(observer, "create"):
        made = observer.create()
    elif isinstance(observer, type) or (
        callable(observer) and not hasattr(observer, "on_event") and hasattr(observer, "name")
    ):
        made = observer()
    else:
        made = observer
    on_event = getattr(made, "on_event", None)
    label = f"observer {name}"
    if callable(on_event):
        return label, on_event
    if callable(made):
        return label, made
    raise ConfigError(
        f"observers: {observer!r} is not an observer (it needs an on_event(event) method or "
        f"to be callable)"
    )

"""What every orchestration shares: tasks, the shared run options, child results, events.

A **task** is a stream factory (what ``l0.run(stream=...)`` takes: a function returning
an async iterator, or an awaitable of one, such as an SDK call) or an async function
returning a value; a mapping ``{"stream": factory, **run options}`` gives one task options
of its own. Every task runs as one ``l0.run`` session (a **child**) with the shared options,
so retries, timeouts, guardrails, fallbacks, continuation and callbacks apply to each.

Which of the two a task is can only be known by calling it, and a stream factory must
be called inside the attempt (so that the first-token timer covers connecting, and a
429 raised by ``await client...create()`` is retried). So the child's factory calls the
task inside the attempt: an async iterator is the stream; any other value is delivered
as one ``Data`` event (a ``str`` as one token), so a value task gets retries and timers
too, and its value is ``result.value``.

Each child's ``context`` gets ``parentId`` (the id of the orchestration, which is the
``stream_id`` of the orchestration's own events) and ``taskIndex``. While a task's
function runs, :data:`current_orchestration` holds that id: an orchestration started
inside it (a race inside a parallel task) carries it as its own ``parentId``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from l0_core.errors import ConfigError, ErrorCode, L0Error
from l0_core.events import Data, Media, ObservabilityEvent
from l0_core.events import ObservabilityEventType as T
from l0_core.runtime.lifecycle import Isolation
from l0_core.runtime.options import describe_value
from l0_core.runtime.sources import takes_resume
from l0_core.runtime.state import State
from l0_core.runtime.stream import Stream, run

__all__ = ["Bus", "RunOptions", "TaskResult", "consume", "task_list"]

#: the id of the orchestration whose task is running here (``None`` outside any)
current_orchestration: ContextVar[str | None] = ContextVar("l0_orchestration", default=None)

#: every keyword of ``l0.run`` except ``stream``: what the orchestrations pass on
RUN_OPTIONS = frozenset(inspect.signature(run).parameters) - {"stream"}

_NESTED_HINT = (
    "a task returned an L0 stream (from l0.run or a client made by l0.wrap); tasks already "
    "run through l0.run with the shared options: use the provider's own client "
    "(AsyncOpenAI(), not l0.wrap(AsyncOpenAI())) or pass the options to the orchestration"
)


def _new_id() -> str:
    try:
        from uuid import uuid7  # type: ignore[attr-defined]
    except ImportError:  # before Python 3.14
        from uuid6 import uuid7
    return str(uuid7())


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be a whole number, {minimum} or more, not "
                          f"{describe_value(value)}")
    return value


def check_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{name} must be a number of seconds (0 or more), not "
                          f"{describe_value(value)}")
    return float(value)


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, not {describe_value(value)}")
    return value


def check_callback(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise ConfigError(f"{name} must be a function or None, not {describe_value(value)}")


class RunOptions:
    """The shared ``l0.run`` options of one orchestration, checked once, up front."""

    __slots__ = ("context", "observers", "on_event", "options")

    def __init__(self, options: Mapping[str, Any], where: str) -> None:
        unknown = sorted(set(options) - RUN_OPTIONS)
        if unknown:
            raise ConfigError(
                f"{where}() got unknown option(s) {', '.join(unknown)}; it takes its own "
                f"arguments and the options of l0.run ({', '.join(sorted(RUN_OPTIONS))})"
            )
        fallbacks = options.get("fallbacks")
        if fallbacks is not None and (isinstance(fallbacks, str | Mapping)
                                      or not isinstance(fallbacks, Iterable)):
            raise ConfigError(f"fallbacks must be a list of stream factories, not "
                              f"{describe_value(fallbacks)}")
        self.options = dict(options)
        if fallbacks is not None:
            self.options["fallbacks"] = list(fallbacks)
        # Every option is checked here, once, by l0.run itself (a session that is never
        # started holds no resource): a wrong one fails where the orchestration is called,
        # not later inside one of its tasks.
        run(stream=_never_started, **self.options)
        self.context: Mapping[str, Any] = options.get("context") or {}
        self.on_event = options.get("on_event")
        self.observers = options.get("observers")

    def check_tasks(self, tasks: Iterable[Any]) -> None:
        """Check the options of each task given as a mapping, up front."""
        for task in tasks:
            if isinstance(task, Mapping):
                self.merged({k: v for k, v in task.items() if k != "stream"}, "a task")

    def merged(self, overrides: Mapping[str, Any], where: str) -> RunOptions:
        """These options with ``overrides`` (a task's or a step's own) on top."""
        if not overrides:
            return self
        return RunOptions({**self.options, **overrides}, where)

    def child(self, task: Any, index: int, parent_id: str) -> Stream:
        """The ``l0.run`` session of one task (not started)."""
        opts = self
        if isinstance(task, Mapping):
            overrides = {k: v for k, v in task.items() if k != "stream"}
            opts = self.merged(overrides, "a task")
            task = task["stream"]
        options = dict(opts.options)
        options["context"] = {**opts.context, "parentId": parent_id, "taskIndex": index}
        return run(stream=task_factory(task, parent_id), **options)


def _never_started() -> Any:
    raise AssertionError("a session made only to check options was started")


def task_list(tasks: Any, where: str, minimum: int = 0) -> list[Any]:
    """The tasks as a list, each checked: a callable, or a mapping with a callable ``stream``."""
    if isinstance(tasks, str | Mapping) or not isinstance(tasks, Iterable):
        raise ConfigError(f"{where}: tasks must be a list of stream factories or async "
                          f"functions, not {describe_value(tasks)}")
    out = list(tasks)
    for i, task in enumerate(out):
        fn = task.get("stream") if isinstance(task, Mapping) else task
        if isinstance(fn, Stream):
            raise ConfigError(f"{where}: tasks[{i}] is an L0 stream, not a factory; write "
                              f"lambda: ... so that it can be started (and retried)")
        if not callable(fn):
            raise ConfigError(
                f"{where}: tasks[{i}] must be a stream factory (such as lambda: client.chat."
                f"completions.create(..., stream=True)), an async function, or a mapping "
                f"with one under 'stream', not {describe_value(task)}")
    if len(out) < minimum:
        raise ConfigError(f"{where} needs at least {minimum} tasks, got {len(out)}")
    return out


def task_factory(task: Callable[..., Any], parent_id: str | None = None) -> Callable[..., Any]:
    """The child's stream factory: calls ``task`` inside the attempt (see the module doc),
    with :data:`current_orchestration` set to ``parent_id`` meanwhile."""
    wants_resume = takes_resume(task)

    async def open_task(resume: Any = None) -> Any:
        token = current_orchestration.set(parent_id)
        try:
            made = task(resume) if wants_resume else task()
            if inspect.isawaitable(made) and not hasattr(made, "__aiter__"):
                made = await made
        finally:
            current_orchestration.reset(token)
        if isinstance(made, Stream):
            await made.aclose()
            raise L0Error(_NESTED_HINT, ErrorCode.INVALID_STREAM)
        if hasattr(made, "__aiter__"):
            return made
        return _value_stream(made)

    info = getattr(task, "l0_source", None)
    if info is not None:
        open_task.l0_source = info  # type: ignore[attr-defined]
    return open_task


async def _value_stream(value: Any) -> AsyncIterator[Any]:
    """A value task's result as a stream: a ``str`` as one token, anything else as data."""
    yield value if isinstance(value, str) else Data(value)


class TaskResult:
    """One task's outcome: ``.text``, ``.state``, ``.error`` (``None`` when it succeeded).

    ``status`` is ``"succeeded"``, ``"failed"``, ``"aborted"`` (stopped by the
    orchestration: ``reason`` says why, ``error`` is the ``STREAM_ABORTED`` error) or
    ``"skipped"`` (never started). ``value`` is what a value task returned (or the last
    ``l0.Data`` a stream produced), else the text (an audio answer's transcript), else, for
    a stream that produced only media, its last media piece (an ``l0.Image``); ``stream``
    is the child's :class:`~l0_core.Stream` (``None`` if never started), ``id`` its
    session id.
    """

    __slots__ = ("_error", "_status", "ended_at", "index", "reason", "started_at", "stream")

    def __init__(self, index: int) -> None:
        self.index = index
        self.stream: Stream | None = None
        self._error: L0Error | None = None
        self._status = "pending"
        self.reason: str | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None

    @property
    def status(self) -> str:
        # a race's winner is handed over still running: its end is the stream's
        stream = self.stream
        if self._status == "running" and stream is not None and stream.finished:
            failure = stream.failure
            return ("succeeded" if stream.state.completed
                    else "aborted" if failure is None or failure.code is ErrorCode.STREAM_ABORTED
                    else "failed")  # (aborted or closed by the caller who got it)
        return self._status

    @property
    def error(self) -> L0Error | None:
        if self._error is None and self._status == "running" and self.stream is not None:
            return self.stream.failure
        return self._error

    @property
    def unfinished(self) -> bool:
        """Started, and no end recorded yet (a live winner, or a loser being stopped)."""
        return self._status == "running"

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def state(self) -> State | None:
        return self.stream.state if self.stream is not None else None

    @property
    def text(self) -> str:
        return self.stream.state.content if self.stream is not None else ""

    @property
    def value(self) -> Any:
        st = self.state
        if st is None:
            return ""
        media = None
        for out in reversed(st.data_outputs):
            if not isinstance(out, Media):
                return out  # a value task's result, or data the stream produced
            media = out if media is None else media
        text = st.content
        return media if media is not None and not text else text

    @property
    def id(self) -> str | None:
        return self.stream.id if self.stream is not None else None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def begin(self, stream: Stream) -> None:
        self.stream = stream
        self._status = "running"
        self.started_at = time.monotonic()

    def end(self, error: L0Error | None, status: str | None = None) -> None:
        self._error = error
        self.ended_at = time.monotonic()
        if status is not None:
            self._status = status
        elif error is None:
            self._status = "succeeded"
        elif self.reason is not None and error.code is ErrorCode.STREAM_ABORTED:
            self._status = "aborted"
        else:
            self._status = "failed"

    def stop(self, reason: str) -> None:
        """Abort a running task (its read is interrupted) or skip one not started yet."""
        if self._status == "running" and self.stream is not None:
            self.reason = reason
            self.stream.abort(reason)
        elif self._status == "pending":
            self.reason = reason
            self.end(L0Error(f"not started: {reason}", ErrorCode.STREAM_ABORTED), "skipped")

    def __repr__(self) -> str:
        extra = f", error={self.error!r}" if self.error is not None else ""
        return f"TaskResult(index={self.index}, status={self.status!r}, " \
               f"text={self.text[:40]!r}{extra})"


async def consume(result: TaskResult) -> L0Error | None:
    """Read the task's stream to the end; its error (``None`` on success)."""
    assert result.stream is not None
    try:
        await result.stream.read()
    except L0Error as error:
        return error
    return None


class Bus:
    """The orchestration's own observability events, to the shared ``on_event`` and
    observers; its id is every child's ``context["parentId"]``."""

    __slots__ = ("_mono0", "_wall0", "context", "id", "isolation", "listeners")

    def __init__(self, options: RunOptions) -> None:
        from l0_core.context import freeze
        from l0_core.runtime.stream import observability_listeners

        self.id = _new_id()
        parent = current_orchestration.get()
        self.context = freeze(options.context if parent is None or "parentId" in options.context
                              else {**options.context, "parentId": parent})
        # as for the children: with observers=None, the ones configured (l0.toml...)
        self.listeners = observability_listeners(options.on_event, options.observers,
                                                 options.options.get("config"))
        self.isolation = Isolation()
        self._mono0 = time.monotonic()
        self._wall0 = time.time() * 1000.0

    def emit(self, type: T, **meta: Any) -> None:
        if not self.listeners:
            return
        ts = self._wall0 + (time.monotonic() - self._mono0) * 1000.0
        event = ObservabilityEvent(type, ts, self.id, self.context, meta)
        for name, listener in self.listeners:
            self.isolation.call(name, listener, event)

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._mono0) * 1000.0

    def callback(self, name: str, fn: Callable[..., Any] | None, *args: Any) -> None:
        """A user callback of the orchestration (``on_progress``...), plain or async: its
        failure is logged once, never raised into the orchestration."""
        if fn is not None:
            self.isolation.call(name, fn, *args)

"""``l0.race`` and ``l0.hedge``: many streams for one answer, the losers stopped cleanly.

Each contender is a child ``l0.run`` session read by a task of its own. When one wins,
every other is aborted (its pending read is interrupted, its upstream closed: the HTTP
connection of a provider SDK is released) and its task awaited, all before ``race``
returns; a contender that fails drops out and the race goes on among the rest.

- ``win="complete"``: the first contender to *finish validly* (every guardrail passed,
  retries included) wins; the result holds its text.
- ``win="first_token"``: the first contender to deliver a token wins, and the caller
  gets it as a :class:`LiveStream`, still streaming: the events read so far are handed
  over first, then the same session goes on in the caller's task (no queue, no copy).

``l0.hedge`` is a race whose contenders start one by one: a backup only when the
streams already running have not produced a first token ``after`` seconds after the
last one started (or when they all failed).

Why not an ``asyncio.TaskGroup`` here (``parallel`` uses one): a task group stops its
tasks by cancelling them, and a ``first_token`` winner must outlive the race. So the
contenders' tasks are owned by the race itself and a ``try/finally`` (shielded from the
caller's cancellation) aborts every loser with a typed reason and awaits each one,
whatever ends the race: a winner, every contender failing, or the caller cancelling.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal, overload

from l0_core.errors import ConfigError, ErrorCode, L0Error
from l0_core.events import Event
from l0_core.events import ObservabilityEventType as T
from l0_core.multi._child import (
    Bus,
    RunOptions,
    TaskResult,
    check_count,
    check_seconds,
    consume,
    task_list,
)
from l0_core.runtime.options import describe_value
from l0_core.runtime.state import State
from l0_core.runtime.stream import Stream

__all__ = ["LatencyHistory", "LiveStream", "RaceResult", "hedge", "race"]

_WINS = ("complete", "first_token")


class RaceResult:
    """The outcome of ``race(win="complete")``: ``.winner`` (the task's index), the
    winner's ``.text``, ``.state`` and ``.stream``; ``.results`` has every contender's
    :class:`TaskResult`, whose ``status`` and ``reason`` say why it ended (``"aborted"``:
    lost the race; ``"failed"``: its own error)."""

    __slots__ = ("duration", "id", "results", "winner")

    def __init__(self, winner: int, results: list[TaskResult], id: str, duration: float) -> None:
        self.winner = winner
        self.results = results
        self.id = id
        self.duration = duration

    @property
    def stream(self) -> Stream:
        stream = self.results[self.winner].stream
        assert stream is not None
        return stream

    @property
    def text(self) -> str:
        return self.results[self.winner].text

    @property
    def state(self) -> State:
        return self.stream.state

    @property
    def value(self) -> Any:
        return self.results[self.winner].value

    @property
    def error(self) -> L0Error | None:
        return None  # a race that nobody won raises instead

    def __repr__(self) -> str:
        return f"RaceResult(winner={self.winner}, text={self.text[:40]!r})"


class LiveStream:
    """The winner of a ``first_token`` race or of a hedge, still streaming.

    Iterate it for the events (those read before it won come first), or
    ``await live.read()`` for the text. ``.winner``, ``.results`` (why the others ended),
    ``.state``, ``.text`` (the text so far), ``.error`` (the winner's failure, if it failed
    after winning), ``abort()``, ``aclose()`` and ``async with`` as for a stream: close it
    (or read it to the end) to release the winner's connection.
    """

    __slots__ = ("_buffer", "_it", "duration", "id", "results", "winner")

    def __init__(self, winner: int, results: list[TaskResult], it: AsyncIterator[Event],
                 buffer: list[Event], id: str, duration: float) -> None:
        self.winner = winner
        self.results = results
        self.id = id
        self.duration = duration
        self._it = it
        self._buffer = deque(buffer)

    @property
    def stream(self) -> Stream:
        stream = self.results[self.winner].stream
        assert stream is not None
        return stream

    @property
    def state(self) -> State:
        return self.stream.state

    @property
    def text(self) -> str:
        return self.stream.state.content

    @property
    def error(self) -> L0Error | None:
        return self.stream.failure

    def __aiter__(self) -> LiveStream:
        return self

    async def __anext__(self) -> Event:
        if self._buffer:
            return self._buffer.popleft()
        return await self._it.__anext__()

    async def read(self) -> str:
        self._buffer.clear()
        return await self.stream.read()

    def abort(self, reason: str = "aborted by the caller") -> None:
        self.stream.abort(reason)

    async def aclose(self) -> None:
        self._buffer.clear()
        await self.stream.aclose()

    async def __aenter__(self) -> LiveStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LiveStream(winner={self.winner}, text={self.text[:40]!r})"


# -- the contenders ---------------------------------------------------------------------------


class _Contender:
    """One child of a race, with the task that reads it."""

    __slots__ = ("buffer", "delivered", "it", "result", "task")

    def __init__(self, result: TaskResult) -> None:
        self.result = result
        self.buffer: list[Event] = []
        self.delivered = False  # produced content (a token, data, media, a tool call...)
        self.it: AsyncIterator[Event] | None = None
        self.task: asyncio.Task[Any] | None = None

    async def until_first_token(self) -> None:
        """Read up to the first content event (a token, or any other output: a tool
        call, data, media, a message) or the end: the events read are kept for the
        caller. Raises the child's error."""
        stream = self.result.stream
        assert stream is not None
        it = self.it = aiter(stream)
        while True:
            try:
                event = await anext(it)
            except StopAsyncIteration:
                return
            self.buffer.append(event)
            if event.is_token or event.is_data or event.is_tool_call or event.is_message:
                self.delivered = True
                return
            if event.is_complete:  # ended with nothing delivered: it cannot win
                return


async def _stop_losers(contenders: list[_Contender], winner: int | None, why: str) -> None:
    """Abort every contender but the winner, and wait until each is closed."""
    for c in contenders:
        if c.result.index != winner:
            if c.result.status == "succeeded":  # it had finished too, in the same moment
                c.result.reason = f"{why} (it had also finished)"
            c.result.stop(why)
    waiting = [c.task for c in contenders if c.task is not None and c.result.index != winner]
    if waiting:
        await asyncio.gather(*waiting, return_exceptions=True)
    for c in contenders:
        if c.result.index == winner or c.result.stream is None:
            continue
        await c.result.stream.aclose()  # one that was suspended at its first token
        if c.result.unfinished:
            aborted = L0Error(why, ErrorCode.STREAM_ABORTED)
            c.result.end(c.result.stream.failure or aborted, "aborted")


def _no_winner(results: list[TaskResult], what: str) -> L0Error:
    errors = [r.error for r in results if r.error is not None]
    codes = ", ".join(f"task {r.index}: {r.error.code.value}" for r in results
                      if r.error is not None)
    error = L0Error(f"{what}: every contender failed ({codes})", ErrorCode.ALL_STREAMS_EXHAUSTED,
                    metadata={"errors": [e.code.value for e in errors]})
    if errors:
        error.__cause__ = errors[-1]
    return error


class _Race:
    """One race: start contenders, wait for a winner, stop the rest."""

    def __init__(self, options: RunOptions, bus: Bus, first_token: bool) -> None:
        self.options = options
        self.bus = bus
        self.first_token = first_token
        self.contenders: list[_Contender] = []

    def start(self, task: Any) -> _Contender:
        result = TaskResult(len(self.contenders))
        result.begin(self.options.child(task, result.index, self.bus.id))
        c = _Contender(result)
        c.task = asyncio.ensure_future(self._read(c))
        self.contenders.append(c)
        return c

    async def _read(self, c: _Contender) -> None:
        if self.first_token:
            try:
                await c.until_first_token()
            except L0Error as error:
                c.result.end(error)
        else:
            c.result.end(await consume(c.result))

    def running(self) -> set[asyncio.Task[Any]]:
        return {c.task for c in self.contenders if c.task is not None and not c.task.done()}

    def winner(self) -> _Contender | None:
        """A contender that has won (the lowest index when several won at once)."""
        for c in self.contenders:
            task = c.task
            if task is None or not task.done() or c.result.error is not None:
                continue
            if c.delivered if self.first_token else c.result.status == "succeeded":
                return c
        return None

    async def wait(self, within: float | None) -> _Contender | None:
        running = self.running()
        if running:
            await asyncio.wait(running, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        return self.winner()

    async def finish(self, winner: _Contender | None) -> None:
        index = winner.result.index if winner is not None else None
        why = f"lost the race to task {index}" if index is not None else "the race was stopped"
        await _stop_losers(self.contenders, index, why)
        if winner is not None:
            self.bus.emit(T.RACE_WINNER, winner=index, winnerId=winner.result.id,
                          reason="first_token" if self.first_token else "complete")

    def live(self, winner: _Contender) -> LiveStream:
        assert winner.it is not None
        return LiveStream(winner.result.index, self.results(), winner.it, winner.buffer,
                          self.bus.id, self.bus.elapsed_ms() / 1000.0)

    def results(self) -> list[TaskResult]:
        return [c.result for c in self.contenders]

    async def run(self, wait_step: Callable[[], Any], end: T,
                  **meta: Callable[[], Any]) -> _Contender:
        """Wait for a winner with ``wait_step`` (which may start contenders); always
        stop and await the losers, whatever happens (even the caller's cancellation),
        and emit ``end`` (with ``meta``'s values), a winner or not."""
        try:
            winner = await self._contest(wait_step)
        except BaseException as error:
            self.bus.emit(end, winner=None, durationMs=self.bus.elapsed_ms(),
                          outcomes=[r.status for r in self.results()],
                          **{k: f() for k, f in meta.items()},
                          _error=error if isinstance(error, L0Error) else None)
            raise
        self.bus.emit(end, winner=winner.result.index, durationMs=self.bus.elapsed_ms(),
                      outcomes=[r.status for r in self.results()],
                      **{k: f() for k, f in meta.items()})
        return winner

    async def _contest(self, wait_step: Callable[[], Any]) -> _Contender:
        winner: _Contender | None = None
        try:
            winner = await wait_step()
        finally:
            stopping = asyncio.ensure_future(self.finish(winner))
            try:
                await asyncio.shield(stopping)
            except asyncio.CancelledError:
                await stopping  # cancelled meanwhile: the losers are closed all the same
                raise
        if winner is None:
            raise _no_winner(self.results(), "race")
        return winner


@overload
async def race(tasks: Iterable[Any], *, win: Literal["complete"] = ...,
               **options: Any) -> RaceResult: ...
@overload
async def race(tasks: Iterable[Any], *, win: Literal["first_token"],
               **options: Any) -> LiveStream: ...
@overload
async def race(tasks: Iterable[Any], *, win: str, **options: Any) -> RaceResult | LiveStream: ...
async def race(
    tasks: Iterable[Any],
    *,
    win: str = "complete",
    **options: Any,
) -> RaceResult | LiveStream:
    """Run every task at once; the first to finish validly (``win="complete"``) or to
    deliver its first token (``win="first_token"``) wins, every other is aborted and
    closed before this returns.

    ``options`` are ``l0.run``'s, shared by every task. Returns a :class:`RaceResult`
    (``complete``) or the winner as a :class:`LiveStream` (``first_token``); raises
    ``ALL_STREAMS_EXHAUSTED`` when every task failed.
    """
    task_items = task_list(tasks, "race", minimum=1)
    if win not in _WINS:
        raise ConfigError(f"win must be 'complete' or 'first_token', not {describe_value(win)}")
    opts = RunOptions(options, "race")
    opts.check_tasks(task_items)
    bus = Bus(opts)
    bus.emit(T.RACE_START, tasks=len(task_items), win=win)
    contest = _Race(opts, bus, first_token=win == "first_token")

    async def step() -> _Contender | None:
        for task in task_items:
            contest.start(task)
        while contest.running():
            winner = await contest.wait(None)
            if winner is not None:
                return winner
        return contest.winner()

    winner = await contest.run(step, T.RACE_END)
    if contest.first_token:
        return contest.live(winner)
    return RaceResult(winner.result.index, contest.results(), bus.id,
                      bus.elapsed_ms() / 1000.0)


# -- hedged requests --------------------------------------------------------------------------


class LatencyHistory:
    """Recent times to first token (seconds), for ``hedge(after="p95")``.

    Keeps the last ``size`` samples; ``percentile(95)`` is the 95th percentile of them,
    or ``None`` with fewer than ``minimum`` samples. ``hedge`` records in the history it
    is given (or the one of its ``key``) the time the caller waited for a first token:
    from the primary's start to the winner's first token.
    """

    __slots__ = ("_recent", "_sorted", "minimum")

    def __init__(self, size: int = 200, minimum: int = 10) -> None:
        check_count("size", size)
        check_count("minimum", minimum, 0)
        self._recent: deque[float] = deque(maxlen=size)
        self._sorted: list[float] = []
        self.minimum = minimum

    def record(self, seconds: float) -> None:
        if len(self._recent) == self._recent.maxlen:
            old = self._recent[0]
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._recent.append(seconds)
        bisect.insort(self._sorted, seconds)

    def percentile(self, p: float) -> float | None:
        n = len(self._sorted)
        if n < self.minimum or n == 0:
            return None
        rank = min(n - 1, max(0, math.ceil(p / 100.0 * n) - 1))  # the nearest rank
        return self._sorted[rank]

    def __len__(self) -> int:
        return len(self._recent)


#: the histories of ``hedge(key=...)``: the most recently used ``_MAX_KEYS`` keys
_HISTORIES: OrderedDict[str, LatencyHistory] = OrderedDict()
_MAX_KEYS = 1024


def _history_for(key: str) -> LatencyHistory:
    history = _HISTORIES.get(key)
    if history is None:
        history = _HISTORIES[key] = LatencyHistory()
        if len(_HISTORIES) > _MAX_KEYS:
            _HISTORIES.popitem(last=False)
    else:
        _HISTORIES.move_to_end(key)
    return history


def _parse_after(after: float | str) -> tuple[float | None, float | None]:
    """``(seconds, percentile)``: ``0.5`` or ``"p95"``."""
    if isinstance(after, str) and after[:1] == "p":
        try:
            p = float(after[1:])
        except ValueError:
            p = -1.0
        if 0 < p < 100:
            return None, p
    elif isinstance(after, int | float) and not isinstance(after, bool) and after >= 0:
        return float(after), None
    raise ConfigError(f"after must be a number of seconds (0 or more) or a percentile of recent "
                      f"times to first token such as 'p95', not {describe_value(after)}")


def _hedge_delay(after: float | str, history: LatencyHistory, default: float) -> float:
    seconds, p = _parse_after(after)
    if seconds is not None:
        return seconds
    assert p is not None
    recent = history.percentile(p)
    return default if recent is None else recent


async def hedge(
    factory: Any,
    *,
    after: float | str = 0.5,
    max_extra: int = 1,
    default_after: float = 1.0,
    history: LatencyHistory | None = None,
    key: str | None = None,
    **options: Any,
) -> LiveStream:
    """Start ``factory``'s stream; if no stream has produced a first token ``after``
    seconds after the last one started, start another (at most ``max_extra`` more; at
    once when every running one failed). The first to deliver a token wins and is
    returned live (a :class:`LiveStream`); the others are aborted and closed.

    ``after`` is seconds, or ``"p95"`` (any percentile): that percentile of the recent
    times to first token in ``history`` (``default_after`` until it has enough samples),
    or in the history this process keeps for ``key`` (one of the two is required: a
    percentile of unrelated requests' latencies means nothing).
    ``factory`` may also be a list of factories: the primary, then each backup in turn.
    """
    factories = task_list(factory if isinstance(factory, list | tuple) else [factory],
                          "hedge", minimum=1)
    check_count("max_extra", max_extra, 0)
    check_seconds("default_after", default_after)
    history = _hedge_history(after, history, key)
    delay = _hedge_delay(after, history, default_after)
    opts = RunOptions(options, "hedge")
    opts.check_tasks(factories)
    bus = Bus(opts)
    bus.emit(T.HEDGE_START, afterMs=delay * 1000.0, maxExtra=max_extra)
    contest = _Race(opts, bus, first_token=True)
    async def step() -> _Contender | None:
        contest.start(factories[0])
        last = time.monotonic()
        while True:
            extra_left = len(contest.contenders) - 1 < max_extra
            if not contest.running() and not extra_left:
                return contest.winner()
            timeout = max(0.0, last + delay - time.monotonic()) if extra_left else None
            if contest.running():
                winner = await contest.wait(timeout)
                if winner is not None:
                    return winner
            if extra_left and (not contest.running() or time.monotonic() >= last + delay):
                n = len(contest.contenders)
                contest.start(factories[min(n, len(factories) - 1)])
                bus.emit(T.HEDGE_BACKUP_START, index=n, delayMs=(time.monotonic() - last) * 1e3)
                last = time.monotonic()

    winner = await contest.run(step, T.HEDGE_END, started=lambda: len(contest.contenders))
    st, began = winner.result.state, contest.contenders[0].result.started_at
    if st is not None and st.first_token_at is not None and began is not None:
        # what the caller waited: a slow primary beaten by a backup counts in full
        history.record(st.first_token_at - began)
    return contest.live(winner)


def _hedge_history(after: float | str, history: Any, key: Any) -> LatencyHistory:
    seconds, _ = _parse_after(after)
    if history is not None and not isinstance(history, LatencyHistory):
        raise ConfigError(f"history must be an l0_core.multi.LatencyHistory, not "
                          f"{describe_value(history)}")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"key must be a string, not {describe_value(key)}")
    if history is not None:
        return history
    if key is not None:
        return _history_for(key)
    if seconds is None:
        raise ConfigError(f"after={after!r} needs the latencies of the same kind of request: "
                          f"pass history=l0_core.multi.LatencyHistory() (kept by you) or "
                          f"key='...' (a history this process keeps for that name)")
    return LatencyHistory(1, 1)  # fixed seconds: nothing to learn from

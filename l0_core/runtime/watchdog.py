"""Idle timers that interrupt a stalled read, with no per-token work.

A timer callback (``loop.call_at``) looks at the session's progress counter
every quarter of the limit. Only time spent while the session's generator is
really waiting on the source counts: when a check finds the consumer holding
control, the clock restarts at the next check that finds the generator reading
again. So an idle source is detected between 1 and 1.25 limits after its last
item, and a slow consumer never looks like a stall.

Interrupting means cancelling the future at the bottom of the pending read,
found by walking the generator's await chain (into tasks it awaits, too). That
works whichever task drives the stream, even a new one per item as
``asyncio.wait_for`` makes on Python 3.11. Only when no future can be found is
the task that is driving the generator cancelled; it is looked up at that
moment, never remembered from an earlier item.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

__all__ = ["Watchdog", "driving_task", "innermost_future"]

_MAX_DEPTH = 128


class Watchdog:
    """The time-to-first-token and inter-token timers of one attempt."""

    __slots__ = ("fired", "fired_after", "handle", "idle", "initial", "inter", "last_change",
                 "last_seen", "limit", "on_stall", "phase", "progress", "reading")

    def __init__(
        self,
        initial: float | None,
        inter: float | None,
        *,
        progress: Callable[[], int],
        reading: Callable[[], bool],
        on_stall: Callable[[], None],
    ) -> None:
        self.initial = initial
        self.inter = inter
        self.progress = progress  # a counter that moves whenever the source yields
        self.reading = reading  # is the generator waiting on the source right now?
        self.on_stall = on_stall
        self.handle: asyncio.TimerHandle | None = None
        self.fired: str | None = None  # "initial" or "inter" once a timer fired
        self.fired_after = 0.0  # seconds without progress when it fired
        self.phase = "initial"
        self.limit: float | None = initial
        self.idle = False
        self.last_seen = -1
        self.last_change = 0.0

    def arm(self) -> None:
        """Start the time-to-first-token timer (at the start of an attempt)."""
        self.phase = "initial"
        self._start(self.initial)

    def to_inter(self) -> None:
        """Switch to the inter-token timer (after the first token)."""
        self.phase = "inter"
        handle, limit = self.handle, self.inter
        if handle is not None and limit is not None:
            # keep the pending check when it comes soon enough: saves a cancel + call_at
            now = asyncio.get_running_loop().time()
            if handle.when() <= now + limit / 4.0:
                self.limit = limit
                self.last_change = now
                self.last_seen = self.progress()
                self.idle = False
                return
        self._start(limit)

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def take_fired(self) -> tuple[str, float, float] | None:
        """``(phase, limit, seconds idle)`` of a timer that fired, once; else ``None``."""
        which, self.fired = self.fired, None
        if which is None:
            return None
        limit = self.initial if which == "initial" else self.inter
        assert limit is not None
        return which, limit, self.fired_after

    def _start(self, limit: float | None) -> None:
        self.disarm()
        self.limit = limit
        if limit is None:
            return
        loop = asyncio.get_running_loop()
        self.last_change = loop.time()
        self.last_seen = self.progress()
        self.idle = False
        self.handle = loop.call_at(self.last_change + limit / 4.0, self._check)

    def _check(self) -> None:
        self.handle = None
        limit = self.limit
        if limit is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self.reading():
            self.idle = True  # the consumer holds control: not the source's time
        else:
            seen = self.progress()
            if self.idle or seen != self.last_seen:
                self.idle = False
                self.last_seen = seen
                self.last_change = now
            elif now - self.last_change >= limit * 0.999:
                self.fired = self.phase
                self.fired_after = now - self.last_change
                self.on_stall()
                return
        when = now + limit / 4.0 if self.idle else min(now + limit / 4.0,
                                                       self.last_change + limit)
        self.handle = loop.call_at(when, self._check)


def _step(obj: Any) -> Any:
    """One level down an await chain (coroutine, async generator, generator, task)."""
    if isinstance(obj, asyncio.Task):
        return obj.get_coro()
    for attr in ("cr_await", "ag_await", "gi_yieldfrom"):
        if hasattr(obj, attr):
            return getattr(obj, attr)
    # opaque awaitables (an async generator's asend, a future's iterator): their referents
    return next(
        (r for r in gc.get_referents(obj)
         if isinstance(r, asyncio.Future) or hasattr(r, "cr_await")
         or hasattr(r, "ag_await") or hasattr(r, "gi_yieldfrom")),
        None,
    )


def innermost_future(gen: Any) -> asyncio.Future[Any] | None:
    """The pending future at the bottom of what ``gen`` awaits, or ``None``.

    Tasks on the way are looked into: cancelling the future a task waits on
    interrupts that task, which the read awaiting it then sees. Runs only when
    a timer fires or on ``abort()``, never per token.
    """
    obj: Any = gen.ag_await
    for _ in range(_MAX_DEPTH):
        if obj is None:
            return None
        if isinstance(obj, asyncio.Future) and not isinstance(obj, asyncio.Task):
            return None if obj.done() else obj
        if isinstance(obj, asyncio.Task) and obj.done():
            return None
        obj = _step(obj)
    return None


def driving_task(gen: Any) -> asyncio.Task[Any] | None:
    """The task whose await chain currently runs ``gen``, looked up now."""
    for task in asyncio.all_tasks():
        obj: Any = task.get_coro()
        for _ in range(_MAX_DEPTH):
            if obj is None or obj is gen:
                break
            obj = _step(obj)
        if obj is gen:
            return task
    return None

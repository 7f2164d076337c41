"""``l0.create_pool``: a fixed number of workers running operations from a bounded queue.

``await pool.execute(task)`` runs one task (a child ``l0.run`` session with the pool's
shared options, plus the operation's own) and returns its :class:`TaskResult`.
``await pool.submit(task)`` only queues it and returns a future of that result. When
``queue_size`` operations are already waiting, both wait for room: a producer faster
than the workers is slowed down (backpressure) instead of filling memory.

Every operation is its own session: guardrail rules, drift detectors and observers get
fresh per-session state from the shared options, so nothing mutable is shared between
operations. After ``shutdown()`` the pool takes nothing more: ``execute()`` and
``submit()`` raise ``POOL_CLOSED`` (a :class:`~l0_core.FatalError`), including callers
that were waiting for room.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.multi._child import Bus, RunOptions, TaskResult, check_count, consume, task_list

__all__ = ["Pool", "PoolStats", "create_pool"]


@dataclass(frozen=True)
class PoolStats:
    """A snapshot: operations ``submitted``, ``succeeded``, ``failed``, ``cancelled`` (by
    their caller, waiting in the queue or running); ``queued`` and ``active`` now; the
    most ever ``queued`` and ``active`` at once. ``completed`` counts every operation
    that has ended (``succeeded + failed + cancelled``)."""

    submitted: int
    succeeded: int
    failed: int
    queued: int
    active: int
    peak_queued: int
    peak_active: int
    cancelled: int = 0

    @property
    def completed(self) -> int:
        return self.succeeded + self.failed + self.cancelled


class Pool:
    """Workers running operations from a bounded queue; see the module documentation.

    Use ``async with l0.create_pool(...) as pool:`` (it shuts down at the end) or call
    :meth:`shutdown` yourself.
    """

    def __init__(self, worker_count: int, queue_size: int, options: RunOptions) -> None:
        self.worker_count = worker_count
        self.queue_size = queue_size
        self._options = options
        self._bus = Bus(options)
        self._queue: deque[tuple[Any, RunOptions, asyncio.Future[TaskResult], int]] = deque()
        self._changed: asyncio.Condition | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False
        self._active = 0
        self._submitted = self._succeeded = self._failed = self._cancelled = 0
        self._peak_queued = self._peak_active = 0

    @property
    def id(self) -> str:
        """The pool's id: the ``context["parentId"]`` of every operation's session."""
        return self._bus.id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stats(self) -> PoolStats:
        return PoolStats(self._submitted, self._succeeded, self._failed, len(self._queue),
                         self._active, self._peak_queued, self._peak_active, self._cancelled)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:  # made in the running loop, on first use
            self._changed = asyncio.Condition()
            self._workers = [asyncio.ensure_future(self._work()) for _ in
                             range(self.worker_count)]
        return self._changed

    def _refuse(self) -> L0Error:
        return L0Error("the pool is shut down: it takes no more operations",
                       ErrorCode.POOL_CLOSED)

    async def submit(self, task: Any, **options: Any) -> asyncio.Future[TaskResult]:
        """Queue ``task`` (waiting while the queue is full) with the pool's options and
        ``options`` on top; returns a future of its :class:`TaskResult`."""
        if self._closed:
            raise self._refuse()
        task_list([task], "pool.submit")
        opts = self._options.merged(options, "pool.submit")
        opts.check_tasks([task])
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: self._closed or len(self._queue) < self.queue_size)
            if self._closed:
                raise self._refuse()
            future: asyncio.Future[TaskResult] = asyncio.get_running_loop().create_future()
            self._queue.append((task, opts, future, self._submitted))
            self._submitted += 1
            self._peak_queued = max(self._peak_queued, len(self._queue))
            changed.notify_all()
        return future

    async def execute(self, task: Any, **options: Any) -> TaskResult:
        """Run ``task`` on the pool and return its :class:`TaskResult` (its failure is in
        ``result.error``; only ``POOL_CLOSED`` is raised). Cancelling the caller (or the
        future of :meth:`submit`) aborts the operation."""
        future = await self.submit(task, **options)
        return await future

    async def _work(self) -> None:
        changed = self._changed
        assert changed is not None
        while True:
            async with changed:
                await changed.wait_for(lambda: bool(self._queue) or self._closed)
                if not self._queue:
                    return  # closed and nothing left
                task, opts, future, index = self._queue.popleft()
                self._active += 1
                self._peak_active = max(self._peak_active, self._active)
                changed.notify_all()  # room in the queue
            try:
                result = await self._run(task, opts, index, future)
            except BaseException:  # the worker itself was cancelled: so is the operation
                future.cancel()
                raise
            finally:
                async with changed:
                    self._active -= 1
                    changed.notify_all()
            if result is not None and not future.done():
                future.set_result(result)

    async def _run(self, task: Any, opts: RunOptions, index: int,
                   future: asyncio.Future[TaskResult]) -> TaskResult | None:
        if future.cancelled():  # the caller gave up while it waited in the queue
            self._cancelled += 1
            return None
        result = TaskResult(index)
        result.begin(opts.child(task, index, self._bus.id))

        def caller_gone(f: asyncio.Future[TaskResult]) -> None:
            if f.cancelled():  # nobody waits for it any more: stop it, close its upstream
                result.stop("the caller cancelled the operation")

        future.add_done_callback(caller_gone)
        result.end(await consume(result))
        if result.ok:
            self._succeeded += 1
        elif future.cancelled():
            self._cancelled += 1
        else:
            self._failed += 1
        return result

    async def drain(self) -> None:
        """Wait until every queued and running operation has finished."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: not self._queue and self._active == 0)

    async def shutdown(self) -> None:
        """Take no more operations, let the queued and running ones finish, stop the
        workers. Waiting submitters get ``POOL_CLOSED``. Idempotent."""
        self._closed = True
        if self._changed is None:
            return
        async with self._changed:
            self._changed.notify_all()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        s = self.stats
        return (f"<l0 Pool workers={self.worker_count} queued={s.queued} active={s.active} "
                f"closed={self._closed}>")


def create_pool(worker_count: int = 3, *, queue_size: int = 100, **options: Any) -> Pool:
    """A pool of ``worker_count`` workers with a queue of at most ``queue_size`` waiting
    operations; ``options`` are ``l0.run``'s, shared by every operation."""
    check_count("worker_count", worker_count)
    check_count("queue_size", queue_size)
    return Pool(worker_count, queue_size, RunOptions(options, "create_pool"))

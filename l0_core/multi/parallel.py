"""Fan-out / fan-in: ``l0.parallel``, ``l0.sequential`` and ``l0.batched``.

Every task is a child ``l0.run`` session; at most ``concurrency`` of them run at once
(that many workers inside one task group, each taking the next task in order). Each
task's failure is its own: it is recorded in its :class:`TaskResult` and the others go
on, unless ``fail_fast``: then the first failure aborts every running child (its pending
read is interrupted and its upstream closed before ``parallel`` returns) and the tasks
not started yet are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

from l0_core.errors import ConfigError, L0Error
from l0_core.events import ObservabilityEventType as T
from l0_core.multi._child import (
    Bus,
    RunOptions,
    TaskResult,
    check_callback,
    check_count,
    check_flag,
    consume,
    task_list,
)
from l0_core.runtime.options import describe_value

__all__ = ["ParallelResult", "batched", "parallel", "sequential"]


class ParallelResult(Sequence[TaskResult]):
    """The results of many tasks, in task order (iterate it, index it, ``len()`` it).

    Each item is a :class:`TaskResult` (``.text``, ``.state``, ``.error``, ``.status``).
    ``succeeded`` and ``failed`` are the results that did and did not succeed (aborted
    and skipped ones count as failed), ``errors`` the errors of the failed ones, in task
    order; ``id`` is the orchestration's id (the children's ``context["parentId"]``).
    """

    __slots__ = ("duration", "id", "results")

    def __init__(self, results: list[TaskResult], id: str, duration: float) -> None:
        self.results = results
        self.id = id
        self.duration = duration

    @overload
    def __getitem__(self, index: int) -> TaskResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[TaskResult]: ...
    def __getitem__(self, index: int | slice) -> TaskResult | Sequence[TaskResult]:
        return self.results[index]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[TaskResult]:
        return iter(self.results)

    @property
    def succeeded(self) -> list[TaskResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[TaskResult]:
        return [r for r in self.results if not r.ok]

    @property
    def errors(self) -> list[L0Error]:
        return [r.error for r in self.results if r.error is not None]

    @property
    def all_succeeded(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.results]

    def __repr__(self) -> str:
        return f"ParallelResult({len(self.succeeded)} succeeded, {len(self.failed)} failed)"


class _Fanout:
    """One run of ``parallel``: ``concurrency`` workers take the tasks in order, one at
    a time (fewer asyncio tasks than one per task behind a semaphore, and the order is
    the task order)."""

    def __init__(self, tasks: list[Any], options: RunOptions, concurrency: int, fail_fast: bool,
                 on_progress: Callable[[int, int], Any] | None,
                 on_result: Callable[[TaskResult], Any] | None, bus: Bus, base: int = 0) -> None:
        self.tasks = tasks
        self.options = options
        self.concurrency = concurrency
        self.fail_fast = fail_fast
        self.on_progress = on_progress
        self.on_result = on_result
        self.bus = bus
        self.results = [TaskResult(base + i) for i in range(len(tasks))]
        self.base = base
        self.done = 0

    async def worker(self, indices: Iterator[int]) -> None:
        for index in indices:  # shared by the workers: each takes the next task
            result = self.results[index]
            if result.status != "pending":  # skipped by fail_fast meanwhile
                continue
            result.begin(self.options.child(self.tasks[index], self.base + index, self.bus.id))
            result.end(await consume(result))
            self.finished(result)

    def finished(self, result: TaskResult) -> None:
        skipped: list[TaskResult] = []
        if result.error is not None and result.status == "failed" and self.fail_fast:
            reason = f"fail_fast: task {result.index} failed ({result.error.code.value})"
            for other in self.results:
                pending = other.status == "pending"
                other.stop(reason)
                if pending:
                    skipped.append(other)
        for ended in (result, *skipped):  # a skipped task is reported too: progress ends at n/n
            self.done += 1
            self.bus.callback("on_result", self.on_result, ended)
            self.bus.callback("on_progress", self.on_progress, self.done, len(self.results))

    async def run(self) -> list[TaskResult]:
        indices = iter(range(len(self.tasks)))
        # (an exception of the group itself, such as the caller's cancellation, leaves no
        # child running: the group cancels and awaits the workers, which closes upstreams)
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.concurrency, len(self.tasks))):
                group.create_task(self.worker(indices))
        return self.results


async def parallel(
    tasks: Iterable[Any],
    *,
    concurrency: int = 5,
    fail_fast: bool = False,
    on_progress: Callable[[int, int], Any] | None = None,
    on_result: Callable[[TaskResult], Any] | None = None,
    **options: Any,
) -> ParallelResult:
    """Run ``tasks`` at most ``concurrency`` at a time; results in task order.

    ``options`` are ``l0.run``'s (retry, timeout, guardrails, fallbacks, continuation,
    callbacks, context...), shared by every task. ``on_result(result)`` is called as each
    task ends, ``on_progress(done, total)`` after it. With ``fail_fast`` the first failure
    aborts the running tasks (their connections are closed before this returns) and skips
    the rest.
    """
    task_items = task_list(tasks, "parallel")
    check_count("concurrency", concurrency)
    check_flag("fail_fast", fail_fast)
    check_callback("on_progress", on_progress)
    check_callback("on_result", on_result)
    opts = RunOptions(options, "parallel")
    opts.check_tasks(task_items)
    bus = Bus(opts)
    bus.emit(T.PARALLEL_START, total=len(task_items), concurrency=concurrency,
             failFast=fail_fast)
    fan = _Fanout(task_items, opts, concurrency, fail_fast, on_progress, on_result, bus)
    return _ended(bus, await fan.run())


def _ended(bus: Bus, results: list[TaskResult]) -> ParallelResult:
    result = ParallelResult(results, bus.id, bus.elapsed_ms() / 1000.0)
    bus.emit(T.PARALLEL_END, total=len(results), succeeded=len(result.succeeded),
             failed=len(result.failed), durationMs=bus.elapsed_ms())
    return result


async def sequential(
    tasks: Iterable[Any],
    *,
    fail_fast: bool = False,
    on_progress: Callable[[int, int], Any] | None = None,
    on_result: Callable[[TaskResult], Any] | None = None,
    **options: Any,
) -> ParallelResult:
    """Run ``tasks`` one after another (``parallel`` with ``concurrency=1``, in order).

    A failure is isolated to its task; with ``fail_fast`` the tasks after it are skipped.
    """
    return await parallel(tasks, concurrency=1, fail_fast=fail_fast, on_progress=on_progress,
                          on_result=on_result, **options)


async def batched(
    items: Iterable[Any],
    handler: Callable[[Any], Any],
    *,
    batch_size: int = 10,
    on_progress: Callable[[int, int], Any] | None = None,
    on_result: Callable[[TaskResult], Any] | None = None,
    **options: Any,
) -> ParallelResult:
    """Run ``handler(item)`` for every item, ``batch_size`` items at a time, batch after
    batch; one result per item, in order, each item's failure its own.

    ``handler(item)`` returns a stream (or an awaitable of one) or is an async function
    returning a value, like any task.
    """
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise ConfigError(f"batched: items must be a list (or another iterable) of inputs "
                          f"for the handler, not {describe_value(items)}")
    task_list([handler], "batched")  # a ConfigError that says why, if it is not a function
    check_count("batch_size", batch_size)
    check_callback("on_progress", on_progress)
    check_callback("on_result", on_result)
    values = list(items)
    opts = RunOptions(options, "batched")
    bus = Bus(opts)
    bus.emit(T.PARALLEL_START, total=len(values), concurrency=batch_size, failFast=False,
             batchSize=batch_size)
    results: list[TaskResult] = []
    done = 0

    def progress(finished: int, total: int) -> None:
        bus.callback("on_progress", on_progress, done + finished, len(values))

    for start in range(0, len(values), batch_size):
        chunk = values[start:start + batch_size]
        fan = _Fanout([_bind(handler, v) for v in chunk], opts, batch_size, False,
                      progress, on_result, bus, base=start)
        results.extend(await fan.run())
        done += len(chunk)
    return _ended(bus, results)


def _bind(handler: Callable[[Any], Any], item: Any) -> Callable[[], Any]:
    def task() -> Any:
        return handler(item)

    task.l0_source = getattr(handler, "l0_source", None)  # type: ignore[attr-defined]
    return task

"""l0.create_pool: bounded queue, backpressure, drain, shutdown, per-operation state."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

import l0_core as l0
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

from .support import FAST, ask, client_for, settled, words


def _echo(request: RecordedRequest) -> Turn:
    prompt = request.messages[-1]["content"]
    if prompt.startswith("leak"):
        return Turn(tokens=words("the SECRET is out"), delay=0.01)
    return Turn(tokens=words(f"done {prompt}"), delay=0.03)


async def test_a_pool_under_backpressure() -> None:
    async with OpenAIServer(turns=_echo) as server:
        client = client_for(server)
        pool = l0.create_pool(worker_count=2, queue_size=2, timeout=FAST)
        queued_after_submit: list[int] = []
        futures = []
        for i in range(8):
            futures.append(await pool.submit(ask(client, "m", f"job {i}")))
            queued_after_submit.append(pool.stats.queued)
        # the producer was held back: never more than 2 waiting, 2 running
        assert max(queued_after_submit) == 2
        assert pool.stats.submitted == 8
        results = await asyncio.gather(*futures)
        assert [r.text for r in results] == [f"done job {i}" for i in range(8)]
        assert [r.index for r in results] == list(range(8))
        stats = pool.stats
        assert (stats.succeeded, stats.failed, stats.queued, stats.active) == (8, 0, 0, 0)
        assert stats.peak_queued == 2 and stats.peak_active == 2 and stats.completed == 8
        assert server.peak_active == 2
        await pool.shutdown()
        with pytest.raises(l0.FatalError) as caught:
            await pool.execute(ask(client, "m", "late"))
        assert caught.value.code is l0.ErrorCode.POOL_CLOSED
        assert len(server.completion_requests) == 8
        await settled(server, client)


async def test_execute_drain_and_context_manager() -> None:
    seen: list[l0.ObservabilityEvent] = []
    async with OpenAIServer(turns=_echo) as server:
        client = client_for(server)
        async with l0.create_pool(3, on_event=seen.append) as pool:
            first = await pool.execute(ask(client, "m", "one"))
            assert first.text == "done one" and first.ok
            for i in range(5):
                await pool.submit(ask(client, "m", f"more {i}"))
            await pool.drain()
            assert pool.stats.completed == 6 and pool.stats.queued == pool.stats.active == 0
        assert pool.closed
        starts = [e for e in seen if e.type is l0.ObservabilityEventType.SESSION_START]
        assert len(starts) == 6 and {e.context["parentId"] for e in starts} == {pool.id}
        await settled(server, client)


class _Budget:
    """A stateful rule: at most 12 characters per session (counted as they stream)."""

    made: ClassVar[list[_Budget]] = []

    def __init__(self) -> None:
        self.name = "budget"
        self.streaming = True
        self.seen = ""
        _Budget.made.append(self)

    def check_delta(self, delta: str, offset: int) -> list[l0.Violation] | None:
        self.seen += delta
        if len(self.seen) > 12:
            return [l0.Violation("budget", f"{len(self.seen)} characters")]
        return None

    def check_complete(self, content: str) -> None:
        return None


async def test_operations_never_share_state() -> None:
    """One stateful rule in the shared options: each operation counts its own text only
    (shared, the four concurrent answers of ~10 characters would exceed 12 together)."""
    _Budget.made.clear()
    async with OpenAIServer(turns=_echo) as server:
        client = client_for(server)
        async with l0.create_pool(4, guardrails=[_Budget], retry=l0.Retry.none()) as pool:
            results = await asyncio.gather(
                *(pool.execute(ask(client, "m", p)) for p in ["a b", "c d", "e f", "g h i j k"]))
        assert [r.text for r in results[:3]] == ["done a b", "done c d", "done e f"]
        assert [r.ok for r in results] == [True, True, True, False]
        assert results[3].error is not None
        assert results[3].error.code is l0.ErrorCode.GUARDRAIL_VIOLATION
        assert sorted(len(rule.seen) for rule in _Budget.made)[:3] == [8, 8, 8]
        assert len(_Budget.made) == 4 and pool.stats.failed == 1
        await settled(server, client)


async def test_per_operation_options() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("dropped")
        return "finally"

    async with l0.create_pool(1, retry=l0.Retry.none()) as pool:
        failed = await pool.execute(flaky)
        assert failed.error is not None and failed.error.code is l0.ErrorCode.NETWORK_ERROR
        ok = await pool.execute(flaky, retry=l0.Retry(network_attempts=2))
        assert ok.text == "finally"


async def test_shutdown_refuses_waiting_submitters() -> None:
    gate = asyncio.Event()

    async def blocked() -> str:
        await gate.wait()
        return "released"

    pool = l0.create_pool(1, queue_size=1)
    running = await pool.submit(blocked)
    await asyncio.sleep(0.01)  # the worker takes it
    queued = await pool.submit(blocked)
    waiting = asyncio.ensure_future(pool.submit(blocked))  # the queue is full: it waits
    await asyncio.sleep(0.01)
    assert not waiting.done()
    closing = asyncio.ensure_future(pool.shutdown())
    await asyncio.sleep(0.01)
    with pytest.raises(l0.FatalError, match="shut down"):
        await waiting
    gate.set()
    await closing
    assert (await running).text == (await queued).text == "released"
    await pool.shutdown()  # again: nothing happens


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"worker_count": 0}, "worker_count"), ({"queue_size": -1}, "queue_size"),
     ({"retry": 5}, "retry must be"), ({"bogus": 1}, "unknown option")],
)
def test_bad_pool_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(l0.ConfigError, match=message):
        l0.create_pool(**kwargs)


async def test_bad_operation_is_a_config_error() -> None:
    async with l0.create_pool(1) as pool:
        with pytest.raises(l0.ConfigError, match="must be a stream factory"):
            await pool.execute("not a task")

"""A caller that gives up (cancels) leaves no stream running and no connection open."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import l0_core as l0
from l0_core.testing.openai_server import OpenAIServer, Turn

from .support import ask, client_for, eventually, settled, words

LONG = Turn(tokens=words("a rather long answer that takes about a second to stream"),
            delay=0.1)


async def _parallel(tasks: list[Any]) -> Any:
    return await l0.parallel(tasks, concurrency=3)


async def _race(tasks: list[Any]) -> Any:
    return await l0.race(tasks)


@pytest.mark.parametrize("operation", [_parallel, _race])
async def test_cancelling_the_caller_closes_every_stream(
        operation: Callable[[list[Any]], Coroutine[Any, Any, Any]]) -> None:
    async with OpenAIServer(turns=[LONG]) as server:
        client = client_for(server)
        tasks = [ask(client, "m") for _ in range(3)]
        running = asyncio.create_task(operation(tasks))
        assert await eventually(lambda: server.active == 3)
        await asyncio.sleep(0.15)  # tokens are flowing
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert await eventually(lambda: server.abandoned == 3)
        await settled(server, client)


async def test_cancelling_a_hedge_while_it_waits_for_a_first_token() -> None:
    async with OpenAIServer(turns=[Turn(tokens=["late"], first_delay=0.5)]) as server:
        client = client_for(server)
        running = asyncio.create_task(l0.hedge(ask(client, "m"), after=0.05, max_extra=1))
        assert await eventually(lambda: len(server.completion_requests) == 2)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert await eventually(lambda: server.abandoned == 2)
        await settled(server, client)


async def test_pool_shutdown_after_its_operations() -> None:
    async with OpenAIServer(turns=[Turn(tokens=words("short answer"), delay=0.05)]) as server:
        client = client_for(server)
        pool = l0.create_pool(2)
        futures = [await pool.submit(ask(client, "m")) for _ in range(2)]
        await pool.shutdown()  # lets them finish
        assert [(await f).text for f in futures] == ["short answer", "short answer"]
        assert pool.stats.completed == 2
        await settled(server, client)


async def test_a_cancelled_pool_caller_aborts_its_operation() -> None:
    async with OpenAIServer(turns=[LONG]) as server:
        client = client_for(server)
        async with l0.create_pool(2) as pool:
            running = asyncio.create_task(pool.execute(ask(client, "m")))
            assert await eventually(lambda: server.active == 1)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            await pool.drain()
            assert (pool.stats.cancelled, pool.stats.failed) == (1, 0)
            # one cancelled while it waits in the queue counts as cancelled too
            # (two workers: keep both busy, then queue one)
            busy = [await pool.submit(ask(client, "m")) for _ in range(2)]
            queued = await pool.submit(ask(client, "m"))
            queued.cancel()
            for f in busy:
                f.cancel()
            await pool.drain()
            stats = pool.stats
            assert (stats.cancelled, stats.failed, stats.succeeded) == (4, 0, 0)
            assert stats.completed == stats.submitted == 4
        assert await eventually(lambda: server.abandoned == 1)
        await settled(server, client)

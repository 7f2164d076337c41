"""Timers interrupt stalled reads; abort, break and cancellation close the upstream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

import l0_core as l0
from l0_core.testing import Script, ScriptedSource
from tests.core.helpers import Recorder, consume

pytestmark = pytest.mark.usefixtures("instant")


async def test_stall_before_first_token_times_out_and_retries() -> None:
    rec = Recorder()
    seen: list[tuple[str, float]] = []
    source = ScriptedSource([Script(["never"], stall_after=0), Script(["ok"])])
    stream = l0.run(stream=source, timeout=l0.Timeout(initial_token=0.1, inter_token=1.0),
                    on_event=rec, on_timeout=lambda kind, secs: seen.append((kind, secs)))
    got = await consume(stream)
    assert got.text == "ok"
    assert [e.error.code for e in got.events if e.is_error and e.error] == [
        l0.ErrorCode.INITIAL_TOKEN_TIMEOUT
    ]
    assert source.calls == 2 and source.all_closed
    # on_timeout gets the time that passed without a token (at least the limit)
    assert [kind for kind, _ in seen] == ["initial"]
    assert 0.1 <= seen[0][1] < 0.2
    assert rec.of("TIMEOUT_TRIGGERED")[0]["configuredMs"] == 100.0


async def test_stall_while_connecting_times_out() -> None:
    calls = 0

    async def factory() -> AsyncIterator[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)

        async def gen() -> AsyncIterator[str]:
            yield "connected"

        return gen()

    stream = l0.run(stream=factory, timeout=l0.Timeout(initial_token=0.1))
    assert await stream.read() == "connected"
    assert calls == 2


async def test_mid_stream_stall_is_interrupted() -> None:
    source = ScriptedSource([Script(["a", "b", "c"], stall_after=2), Script(["abc"])])
    started = time.monotonic()
    got = await consume(l0.run(stream=source, timeout=l0.Timeout(inter_token=0.2)))
    elapsed = time.monotonic() - started
    assert got.text == "abc"
    assert [e.error.code for e in got.events if e.is_error and e.error] == [
        l0.ErrorCode.INTER_TOKEN_TIMEOUT
    ]
    assert got.kinds == ["token", "token", "error", "discard", "token", "complete"]
    assert 0.2 <= elapsed < 2.0
    assert source.all_closed


async def test_slow_consumer_is_not_a_stall() -> None:
    source = ScriptedSource([Script(["a", "b", "c"])])
    stream = l0.run(stream=source, timeout=l0.Timeout(initial_token=0.1, inter_token=0.1))
    text = ""
    async for event in stream:
        if event.is_token:
            text += event.text
            await asyncio.sleep(0.25)
    assert text == "abc"
    assert source.calls == 1


async def test_total_budget_halts_the_session() -> None:
    source = ScriptedSource([Script(["a", "b"], delay=0.2)])
    got = await consume(l0.run(stream=source, timeout=l0.Timeout(total=0.3)))
    assert isinstance(got.error, l0.TimeoutException)
    assert got.error.code is l0.ErrorCode.TOTAL_TIMEOUT
    assert source.calls == 1 and source.all_closed


async def test_abort_interrupts_a_stalled_read() -> None:
    aborted: list[tuple[int, int]] = []
    source = ScriptedSource([Script(["a", "b"], stall_after=1)])
    stream = l0.run(stream=source, on_abort=lambda n, length: aborted.append((n, length)),
                    timeout=l0.Timeout(inter_token=60))
    asyncio.get_running_loop().call_later(0.1, stream.abort)
    got = await consume(stream)
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.STREAM_ABORTED
    assert got.text == "a"
    assert stream.state.aborted
    assert aborted == [(1, 1)]
    assert source.all_closed


async def test_abort_from_the_consumer_loop() -> None:
    source = ScriptedSource([Script(["a", "b", "c", "d"])])
    stream = l0.run(stream=source)
    seen = []
    with pytest.raises(l0.L0Error) as info:
        async for event in stream:
            seen.append(event.text)
            stream.abort()
    assert info.value.code is l0.ErrorCode.STREAM_ABORTED
    assert seen == ["a"]
    assert source.all_closed


async def test_task_cancellation_ends_cleanly_and_closes() -> None:
    source = ScriptedSource([Script(["a", "b"], stall_after=1)])
    stream = l0.run(stream=source, timeout=l0.Timeout(inter_token=60))
    task = asyncio.create_task(stream.read())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.all_closed


async def test_break_then_aclose_closes_upstream() -> None:
    source = ScriptedSource([Script(["a", "b", "c"])])
    stream = l0.run(stream=source)
    async for _ in stream:
        break
    await stream.aclose()
    assert source.streams[0].closed


async def test_every_path_closes_its_upstream() -> None:
    primary = ScriptedSource(
        [Script(["x"], fail_after=1), Script(["y"], stall_after=0), Script([])]
    )
    backup = ScriptedSource([Script(["ok"])])
    stream = l0.run(stream=primary, fallbacks=[backup], retry=l0.Retry(attempts=0),
                    timeout=l0.Timeout(initial_token=0.1))
    assert await stream.read() == "ok"
    assert primary.calls == 3  # error, timeout, zero output (no model retries left)
    assert all(s.closed or s.finished for s in primary.streams + backup.streams)
    assert all(s.closed for s in primary.streams)


async def test_break_alone_closes_upstream_while_stream_is_still_referenced() -> None:
    source = ScriptedSource([Script(["a", "b", "c"], delay=0.01)])
    stream = l0.run(stream=source)
    async for _ in stream:
        break
    for _ in range(5):  # asyncio finalises the abandoned generator on the next loop turns
        await asyncio.sleep(0)
    assert source.streams[0].closed
    assert stream.state.content == "a"

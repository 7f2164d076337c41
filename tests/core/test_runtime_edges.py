"""Edge cases of the runtime: other tasks, aborts while recovering, stale side outputs,
adapters that mix text and events, callbacks, serialisation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

import l0_core as l0
from l0_core.runtime.adapters import FeedResult, Finish
from l0_core.testing import FakeChunkAdapter, Script, ScriptedSource, chunks, instant_backoff
from tests.core.helpers import Recorder, consume

EVERY_TOKEN = l0.CheckIntervals(guardrails=1)  # check each token before delivery


async def test_stall_detected_when_each_read_runs_in_its_own_task() -> None:
    source = ScriptedSource([Script(["a", "b"], stall_after=1), Script(["ok"])])
    stream = l0.run(stream=source, timeout=l0.Timeout(inter_token=0.2), retry=l0.Retry(
        base_delay=0.01))
    it = aiter(stream)
    kinds = []
    started = time.monotonic()
    with pytest.raises(StopAsyncIteration):
        while True:  # asyncio.wait_for runs each read in a new task on Python 3.11
            event = await asyncio.wait_for(anext(it), 5)
            kinds.append(event.type.value)
    assert time.monotonic() - started < 3
    assert kinds == ["token", "error", "discard", "token", "complete"]
    assert stream.state.content == "ok"


async def test_concurrent_streams_read_through_gather_time_out_independently() -> None:
    stalled = ScriptedSource([Script(["x"], stall_after=1), Script(["fine"])])
    healthy = ScriptedSource([Script(["y1", "y2"], delay=0.05)])
    a = l0.run(stream=stalled, timeout=l0.Timeout(inter_token=0.2), retry=l0.Retry(
        base_delay=0.01))
    b = l0.run(stream=healthy, timeout=l0.Timeout(inter_token=5))
    texts = await asyncio.gather(a.read(), b.read())
    assert texts == ["fine", "y1y2"]


async def test_abort_during_backoff_is_typed_and_reported() -> None:
    aborted: list[tuple[int, int]] = []
    source = ScriptedSource([Script(["x"], fail_after=1), Script(["never"])])
    stream = l0.run(stream=source, retry=l0.Retry(base_delay=2.0, strategy="fixed"),
                    on_abort=lambda n, c: aborted.append((n, c)))
    asyncio.get_running_loop().call_later(0.2, stream.abort)
    started = time.monotonic()
    got = await consume(stream)
    assert time.monotonic() - started < 1.5
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.STREAM_ABORTED
    assert source.calls == 1
    assert aborted == [(0, 0)]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_total_budget_during_backoff() -> None:
    source = ScriptedSource([Script(["x"], fail_after=0), Script(["never"])])
    got = await consume(l0.run(stream=source, timeout=l0.Timeout(total=0.2),
                               retry=l0.Retry(base_delay=3.0, strategy="fixed")))
    assert isinstance(got.error, l0.TimeoutException)
    assert got.error.code is l0.ErrorCode.TOTAL_TIMEOUT


async def test_abort_on_an_error_event_does_not_wait_for_the_backoff() -> None:
    source = ScriptedSource([Script(["x"], fail_after=1), Script(["never"])])
    stream = l0.run(stream=source, retry=l0.Retry(base_delay=2.0, strategy="fixed"))
    started = time.monotonic()
    with pytest.raises(l0.L0Error) as info:
        async for event in stream:
            if event.is_error:
                stream.abort()
    assert info.value.code is l0.ErrorCode.STREAM_ABORTED
    assert time.monotonic() - started < 1.0
    assert source.calls == 1


async def test_abort_before_iteration() -> None:
    rec = Recorder()
    aborted: list[Any] = []
    stream = l0.run(stream=ScriptedSource([Script(["x"])]), on_event=rec,
                    on_abort=lambda *a: aborted.append(a))
    stream.abort()
    got = await consume(stream)
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.STREAM_ABORTED
    assert rec.types[:2] == ["SESSION_START", "ABORT_REQUESTED"]
    assert "ABORT_COMPLETED" in rec.types
    assert aborted == [(0, 0)]
    assert rec.events[1].ts >= rec.events[0].ts


async def test_abort_after_completion_is_a_no_op() -> None:
    stream = l0.run(stream=ScriptedSource([Script(["x"])]))
    async for event in stream:
        if event.is_complete:
            stream.abort()
    assert stream.state.completed
    assert not stream.state.aborted


async def test_slow_consumer_with_a_slow_source_is_not_a_stall() -> None:
    source = ScriptedSource([Script(["a", "b", "c", "d"], delay=0.12)])
    stream = l0.run(stream=source, timeout=l0.Timeout(initial_token=0.2, inter_token=0.2))
    async for event in stream:
        if event.is_token:
            await asyncio.sleep(0.3)  # the consumer takes longer than the limit
    assert stream.state.content == "abcd"
    assert source.calls == 1


async def test_non_text_items_keep_the_first_token_timer_alive() -> None:
    async def tools_then_text() -> AsyncIterator[Any]:
        for i in range(6):
            await asyncio.sleep(0.05)
            yield l0.Progress(i)
        yield l0.Token("done")

    stream = l0.run(stream=tools_then_text, timeout=l0.Timeout(initial_token=0.15))
    assert await stream.read() == "done"


async def test_tool_calls_of_an_abandoned_attempt_do_not_count_as_output() -> None:
    calls = 0

    async def source() -> AsyncIterator[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            yield l0.ToolCall("call_1", "f", {})
            raise ConnectionResetError("cut")
        if calls == 3:
            yield l0.Token("fine")

    with _instant():
        stream = l0.run(stream=source)
        got = await consume(stream)
    assert got.error is None
    assert [e.error.code for e in got.events if e.is_error and e.error] == [
        l0.ErrorCode.NETWORK_ERROR, l0.ErrorCode.ZERO_OUTPUT
    ]
    assert stream.state.tool_calls == []
    assert stream.state.content == "fine"
    assert calls == 3


def _instant() -> Any:
    from l0_core.testing import instant_backoff

    return instant_backoff()


class _Mixed:
    """An adapter whose items are lists of strings: each item gives several tokens."""

    name = "mixed"

    def detect(self, item: Any) -> bool:
        return isinstance(item, list)

    def open(self, options: Mapping[str, Any] | None = None) -> Any:
        class Session:
            def feed(self, item: Any) -> FeedResult:
                if len(item) == 1:
                    return l0.Token(item[0])
                return [l0.Token(t) for t in item]

            def finish(self) -> Finish:
                return Finish("stop")

        return Session()


async def test_an_item_with_several_tokens_rejected_by_a_fatal_rule_is_not_kept() -> None:
    async def source() -> AsyncIterator[list[str]]:
        yield ["Hello "]
        yield ["world ", "FORBIDDEN"]

    rule = l0.CustomPatternRule(["FORBIDDEN"], severity="fatal")
    stream = l0.run(check_intervals=EVERY_TOKEN, stream=source, adapter=_Mixed(),
                    guardrails=[rule])
    got = await consume(stream)
    assert isinstance(got.error, l0.GuardrailError)
    assert got.text == stream.state.content == "Hello "


async def test_single_token_events_from_an_adapter_are_deduplicated() -> None:
    calls = 0

    async def source() -> AsyncIterator[list[str]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            yield ["Once"]
            yield [" upon"]
            raise ConnectionResetError("cut")
        yield [" upon"]
        yield [" a time"]

    with _instant():
        stream = l0.run(stream=source, adapter=_Mixed(), continue_from_last_good_token=True)
        assert await stream.read() == "Once upon a time"


async def test_on_token_sees_the_flushed_overlap_tail() -> None:
    seen: list[str] = []
    source = ScriptedSource([Script(["Once", " upon"], fail_after=2), Script([" up"])])
    with _instant():
        stream = l0.run(stream=source, continue_from_last_good_token=True, on_token=seen.append)
        text = await stream.read()
    assert "".join(seen[:2]) == "Once upon"
    assert "".join(seen[2:]) == text[len("Once upon"):]


async def test_bare_iterator_primary_falls_back() -> None:
    async def primary() -> AsyncIterator[str]:
        yield "x"
        raise ConnectionResetError("cut")

    async def backup() -> AsyncIterator[str]:
        yield "backup"

    got = await consume(l0.run(stream=primary(), fallbacks=[backup]))
    assert got.error is None
    assert got.text == "backup"


async def test_a_raising_continuation_prompt_builder_falls_back_to_the_default() -> None:
    def broken(checkpoint: str) -> str:
        raise ValueError("bug in the prompt builder")

    source = ScriptedSource([Script(["one", " two"], fail_after=2), Script([" three"])])
    with _instant():
        stream = l0.run(stream=source, continue_from_last_good_token=True,
                        build_continuation_prompt=broken)
        assert await stream.read() == "one two three"
    assert "one two" in source.resumes[1].prompt


async def test_observability_events_serialise_to_json() -> None:
    rec = Recorder()
    source = ScriptedSource([Script(["x"], fail_after=1), Script(["ok"])])
    with _instant():
        await l0.run(stream=source, on_event=rec, on_complete=lambda s: None,
                     on_error=lambda *a: None).read()
    for event in rec.events:
        json.dumps(event.to_dict())


async def test_errors_carry_the_session_counters() -> None:
    source = ScriptedSource([Script(["a", "b"], fail_after=2)] * 3 + [Script(["ok"])])
    with _instant():
        stream = l0.run(stream=source)
        await stream.read()
    last = stream.errors[-1].to_json()
    assert last["networkRetryCount"] == 2
    assert last["tokenCount"] == 2


async def test_length_continuation_past_the_budget_completes_with_length() -> None:
    source = ScriptedSource([Script([piece], kind="chunks", finish_reason="length")
                             for piece in ("Once", " upon", " a time")])
    with _instant():
        stream = l0.run(stream=source, adapter=FakeChunkAdapter(),
                        continue_from_last_good_token=True, retry=l0.Retry(attempts=2))
        text = await stream.read()
    assert text == "Once upon a time"  # two continuations, then the budget is spent
    assert stream.state.finish_reason == "length"
    assert source.calls == 3


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("interval", [1, 3, 16])
async def test_on_token_sees_exactly_the_tokens_delivered(chunked: bool, interval: int) -> None:
    """``on_token`` (on the fast path with checks) is called for a token just before the
    consumer gets it, never for one a check stops before delivery."""
    attempts = [["a ", "b ", "c ", "[INST] ", "d ", "e ", "f ", "g "], ["x ", "y ", "z"]]
    calls = 0

    def factory() -> AsyncIterator[Any]:
        nonlocal calls
        texts = attempts[calls]
        calls += 1

        async def gen() -> AsyncIterator[Any]:
            for item in chunks(texts) if chunked else texts:
                yield item

        return gen()

    seen: list[str] = []
    delivered: list[str] = []
    with instant_backoff():
        stream = l0.run(
            stream=factory, adapter=FakeChunkAdapter() if chunked else None,
            guardrails=["pattern"], check_intervals=l0.CheckIntervals(guardrails=interval),
            on_token=seen.append,
        )
        async for event in stream:
            if event.is_token:
                assert event.text is not None
                assert seen[-1] == event.text  # called just before this token was handed over
                delivered.append(event.text)
    assert seen == delivered
    assert stream.state.content == "x y z" and calls == 2
    # the check that finds "[INST]" runs before the token that completes its batch
    assert len(seen) - 3 == {1: 3, 3: 5, 16: 8}[interval]

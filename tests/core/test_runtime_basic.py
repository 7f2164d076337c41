"""The consumer contract of l0.run: exact text, exact events, typed errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import l0_core as l0
from l0_core.testing import FakeChunkAdapter, Script, ScriptedSource, chunks
from tests.core.helpers import Recorder, consume


async def agen(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def test_text_stream_delivers_exact_tokens_then_complete() -> None:
    stream = l0.run(stream=lambda: agen(["Hello", ", ", "world", "!"]))
    got = await consume(stream)
    assert got.error is None
    assert got.kinds == ["token"] * 4 + ["complete"]
    assert [e.text for e in got.events] == ["Hello", ", ", "world", "!", "Hello, world!"]
    assert stream.state.content == "Hello, world!"
    assert stream.state.token_count == 4
    assert stream.state.completed


async def test_read_and_await_forms() -> None:
    assert await l0.run(stream=lambda: agen(["a", "b"])).read() == "ab"
    stream = await l0.run(stream=lambda: agen(["x"]))
    assert isinstance(stream, l0.Stream)
    assert await stream.read() == "x"


async def test_async_context_manager_closes_upstream_on_break() -> None:
    source = ScriptedSource([Script(["a", "b", "c", "d"])])
    async with l0.run(stream=source) as stream:
        async for event in stream:
            if event.is_token:
                break
    assert source.streams[0].closed
    assert stream.state.content == "a"


async def test_awaitable_factory_is_awaited() -> None:
    async def factory() -> AsyncIterator[str]:
        return agen(["ok"])

    assert await l0.run(stream=factory).read() == "ok"


async def test_bare_iterator_works_once_and_says_why_it_cannot_retry() -> None:
    assert await l0.run(stream=agen(["one"])).read() == "one"

    async def failing() -> AsyncIterator[str]:
        yield "x"
        raise ConnectionResetError("cut")

    got = await consume(l0.run(stream=failing()))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.INVALID_STREAM
    assert "factory" in got.error.message


async def test_unknown_item_type_is_a_typed_error() -> None:
    got = await consume(l0.run(stream=lambda: agen([object()])))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.ADAPTER_NOT_FOUND
    assert "installed adapters" in got.error.message


async def test_non_str_item_in_text_stream_is_invalid_not_dropped() -> None:
    got = await consume(l0.run(stream=lambda: agen(["a", "b", 3]), retry=l0.Retry.none()))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.INVALID_STREAM


async def test_factory_returning_non_iterator_is_invalid_stream() -> None:
    got = await consume(l0.run(stream=lambda: 42))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.INVALID_STREAM


@pytest.mark.usefixtures("instant")
async def test_zero_output_is_retried() -> None:
    source = ScriptedSource([Script([]), Script(["  ", "\n"]), Script(["fine"])])
    got = await consume(l0.run(stream=source))
    assert got.error is None
    assert got.text == "fine"
    assert source.calls == 3
    errors = [e.error.code for e in got.events if e.is_error and e.error]
    assert errors == [l0.ErrorCode.ZERO_OUTPUT, l0.ErrorCode.ZERO_OUTPUT]


@pytest.mark.usefixtures("instant")
async def test_zero_output_exhausts_attempts() -> None:
    source = ScriptedSource([Script([])])
    got = await consume(l0.run(stream=source, retry=l0.Retry(attempts=2)))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.ZERO_OUTPUT
    assert source.calls == 3


async def test_zero_output_detection_can_be_turned_off() -> None:
    assert await l0.run(stream=lambda: agen([]), detect_zero_tokens=False).read() == ""


@pytest.mark.usefixtures("instant")
async def test_in_band_error_event_is_retried() -> None:
    source = ScriptedSource(
        [Script(["a", "b"], kind="events", fail_after=1, in_band_error=True),
         Script(["ab"], kind="events")]
    )
    got = await consume(l0.run(stream=source))
    assert got.error is None
    assert got.text == "ab"
    assert source.calls == 2


@pytest.mark.usefixtures("instant")
async def test_missing_terminal_marker_is_incomplete_and_retried() -> None:
    source = ScriptedSource(
        [Script(["par", "tial"], kind="chunks", terminal=False), Script(["whole"], kind="chunks")]
    )
    got = await consume(l0.run(stream=source, adapter=FakeChunkAdapter()))
    codes = [e.error.code for e in got.events if e.is_error and e.error]
    assert codes == [l0.ErrorCode.INCOMPLETE]
    assert got.text == "whole" == got.events[-1].text
    assert source.calls == 2


async def test_finish_reason_length_is_visible() -> None:
    rec = Recorder()
    source = ScriptedSource([Script(["cut"], kind="chunks", finish_reason="length")])
    stream = l0.run(stream=source, adapter=FakeChunkAdapter(), on_event=rec)
    assert await stream.read() == "cut"
    assert stream.state.finish_reason == "length"
    assert [e["finishReason"] for e in rec.of("FINISH_REASON")] == ["length"]


async def test_keep_raw_only_on_request() -> None:
    items = chunks(["a", "b"])
    stream = l0.run(stream=lambda: agen(items), adapter=FakeChunkAdapter(), keep_raw=True)
    await stream.read()
    assert stream.raw() == items
    plain = l0.run(stream=lambda: agen(["a"]))
    await plain.read()
    with pytest.raises(l0.L0Error) as info:
        plain.raw()
    assert info.value.code is l0.ErrorCode.FEATURE_NOT_ENABLED


async def test_stream_can_be_iterated_only_once() -> None:
    stream = l0.run(stream=lambda: agen(["a"]))
    await stream.read()
    assert stream.__aiter__() is stream.__aiter__()


async def test_events_stream_passes_tool_calls_and_data() -> None:
    call = l0.ToolCall("c1", "lookup", {"q": "x"})
    items = [l0.Token("hi"), call, l0.Data({"k": 1}), l0.Progress(0.5)]
    seen: list[tuple[str, str, Any]] = []
    stream = l0.run(stream=lambda: agen(items),
                    on_tool_call=lambda name, id_, args: seen.append((name, id_, args)))
    got = await consume(stream)
    assert got.kinds == ["token", "tool_call", "data", "progress", "complete"]
    assert stream.state.tool_calls == [call]
    assert stream.state.data_outputs == [{"k": 1}]
    assert stream.state.last_progress == 0.5
    assert seen == [("lookup", "c1", {"q": "x"})]

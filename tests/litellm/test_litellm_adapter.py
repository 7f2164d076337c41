"""The ``litellm`` adapter: through the real library against the test server (text, tool
calls, usage, finish reasons, raw chunks, ``litellm.Router``) and on pre-built chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import litellm
import pytest
from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

import l0_core as l0
from l0_core.plugins import host as plugins
from l0_core.testing.openai_server import OpenAIServer, ToolCallSpec, Turn
from l0_litellm import LiteLLMAdapter

from .support import (
    FAST,
    MESSAGES,
    OK,
    OK_EVENTS,
    TEXT,
    TOKENS,
    assert_idle,
    collect,
    litellm_args,
)


def chunk(content: str | None = None, finish: str | None = None) -> ModelResponseStream:
    choice = StreamingChoices(index=0, delta=Delta(content=content), finish_reason=finish)
    return ModelResponseStream(id="chatcmpl-1", model="gpt-4o", choices=[choice])


async def _items(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


def test_the_adapter_is_registered_and_detects_litellm_chunks() -> None:
    adapter = plugins.get_host().registry("adapters").get("litellm")
    assert isinstance(adapter, LiteLLMAdapter)
    assert adapter.detect(chunk("x"))
    assert not adapter.detect("x")
    assert not adapter.detect({"choices": []})


def test_prebuilt_chunks() -> None:
    session = LiteLLMAdapter().open()
    out = [session.feed(item) for item in (chunk(""), chunk("Hel"), chunk("lo"),
                                           chunk(None, "stop"))]
    assert out == [None, "Hel", "lo", None]
    assert type(out[1]) is str
    assert session.finish() == l0.Finish("stop", None)


async def test_a_stream_without_a_finish_reason_is_incomplete_and_retried() -> None:
    attempts = iter([(chunk("Hel"), chunk("lo")), (chunk("Hel"), chunk("lo"), chunk(None, "stop"))])
    stream = l0.run(stream=lambda: _items(*next(attempts)), timeout=FAST)
    assert await collect(stream) == ["token:Hel", "token:lo", "error:INCOMPLETE:retry",
                                     "discard:Hello", "token:Hel", "token:lo", "complete:Hello"]
    assert "the LiteLLM stream ended without a finish_reason" in str(stream.errors[0])


async def test_text_usage_finish_reason_and_raw_chunks() -> None:
    async with OpenAIServer(turns=[OK]) as server:
        args = litellm_args(server, stream_options={"include_usage": True})
        stream = l0.run(stream=lambda: litellm.acompletion(**args), timeout=FAST, keep_raw=True)
        assert await collect(stream) == OK_EVENTS
        state = stream.state
        assert state.content == TEXT
        assert state.finish_reason == "stop"
        assert state.usage is not None
        assert state.usage["completion_tokens"] == len(TOKENS)
        assert state.raw_chunks is not None
        assert all(type(c).__name__ == "ModelResponseStream" for c in state.raw_chunks)
        assert "".join(c.choices[0].delta.content or "" for c in state.raw_chunks
                       if c.choices) == TEXT
        await assert_idle(server)


async def test_tool_calls_are_assembled_with_parsed_arguments() -> None:
    calls = [ToolCallSpec("get_weather", '{"city": "Paris", "unit": "C"}', id="call_a",
                          fragments=3),
             ToolCallSpec("get_time", '{"tz": "CET"}', id="call_b", fragments=2)]
    turn = Turn(tokens=["Checking."], tool_calls=calls, finish_reason="tool_calls")
    async with OpenAIServer(turns=[turn]) as server:
        stream = l0.run(stream=lambda: litellm.acompletion(**litellm_args(server)), timeout=FAST)
        assert await collect(stream) == [
            "token:Checking.",
            'tool:call_a:get_weather:{"city": "Paris", "unit": "C"}',
            'tool:call_b:get_time:{"tz": "CET"}',
            "complete:Checking.",
        ]
        assert stream.state.finish_reason == "tool_calls"
        assert len(server.requests) == 1


async def test_cut_tool_call_arguments_at_the_length_limit_are_retried() -> None:
    cut = Turn(tool_calls=[ToolCallSpec("f", '{"a": 1', id="call_1")], finish_reason="length")
    whole = Turn(tool_calls=[ToolCallSpec("f", '{"a": 1}', id="call_1")],
                 finish_reason="tool_calls")
    async with OpenAIServer(turns=[cut, whole]) as server:
        stream = l0.run(stream=lambda: litellm.acompletion(**litellm_args(server)), timeout=FAST,
                        detect_zero_tokens=False)
        assert await collect(stream) == ["error:INCOMPLETE:retry", 'tool:call_1:f:{"a": 1}',
                                         "complete:"]
        assert len(server.requests) == 2


async def test_content_filter_is_content_policy() -> None:
    async with OpenAIServer(turns=[Turn(tokens=["Hel"], finish_reason="content_filter")]) as s:
        stream = l0.run(stream=lambda: litellm.acompletion(**litellm_args(s)), timeout=FAST)
        with pytest.raises(l0.L0Error) as caught:
            await stream.read()
        assert caught.value.code is l0.ErrorCode.CONTENT_POLICY
        assert len(s.requests) == 1


async def test_length_is_a_finish_reason_not_an_error() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, finish_reason="length")]) as server:
        stream = l0.run(stream=lambda: litellm.acompletion(**litellm_args(server)), timeout=FAST)
        assert await stream.read() == TEXT
        assert stream.state.finish_reason == "length"


async def test_router_streams_are_read_and_retried_by_l0() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS[:2], cut_after=1), OK]) as server:
        router = litellm.Router(
            model_list=[{"model_name": "chat", "litellm_params": {
                "model": "openai/gpt-4o", "api_base": server.base_url, "api_key": "test"}}],
            num_retries=0,
        )
        stream = l0.run(stream=lambda: router.acompletion(model="chat", messages=MESSAGES,
                                                          stream=True), timeout=FAST)
        events = await collect(stream)
        assert events == ["token:Hello", "error:NETWORK_ERROR:retry", "discard:Hello",
                          *OK_EVENTS]
        assert len(server.requests) == 2
        await assert_idle(server)


def test_text_with_a_tool_call_or_a_finish_reason_in_the_same_chunk() -> None:
    """The fast text path of LiteLLM chunks never skips what else a chunk carries."""
    fragment = {"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "f", "arguments": '{"a": 1}'}}
    with_tool = ModelResponseStream(id="c", model="m", choices=[StreamingChoices(
        index=0, delta=Delta(content="Hi", tool_calls=[fragment]), finish_reason=None)])
    session = LiteLLMAdapter().open()
    assert session.feed(with_tool) == "Hi"
    out = session.feed(chunk("!", "tool_calls"))
    assert out == [l0.Token("!"), l0.ToolCall("call_1", "f", {"a": 1}, 0)]
    assert session.finish() == l0.Finish("tool_calls", None)
    other = LiteLLMAdapter().open({"choice_index": 1})
    assert other.feed(chunk("not mine")) is None

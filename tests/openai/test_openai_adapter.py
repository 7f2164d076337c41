"""The ``openai`` and ``openai-responses`` adapters on pre-built SDK objects."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

import l0_core as l0
from l0_core.plugins import host as plugins
from l0_openai import ChatCompletionsAdapter, ResponsesAdapter

from .support import collect


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    index: int = 0,
    tool_calls: list[dict[str, Any]] | None = None,
    refusal: str | None = None,
    role: str | None = None,
    usage: dict[str, int] | None = None,
    choices: bool = True,
) -> ChatCompletionChunk:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    if refusal is not None:
        delta["refusal"] = refusal
    if role is not None:
        delta["role"] = role
    data: dict[str, Any] = {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}] if choices else [],
    }
    if usage is not None:
        data["usage"] = usage
    return ChatCompletionChunk.model_validate(data)


def tool(index: int, *, id: str | None = None, name: str | None = None,
         args: str | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    out: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        out.update(id=id, type="function")
    return out


def feed_all(items: list[Any], options: dict[str, Any] | None = None) -> tuple[list[Any], Any]:
    session = ChatCompletionsAdapter().open(options)
    out = [session.feed(item) for item in items]
    return out, session.finish()


def test_plain_text_is_returned_as_str() -> None:
    items = [chunk("", role="assistant"), chunk("Hel"), chunk("lo"), chunk(finish="stop")]
    out, finish = feed_all(items)
    assert out == [None, "Hel", "lo", None]
    assert type(out[1]) is str
    assert finish == l0.Finish("stop", None)


def test_detect() -> None:
    adapter = ChatCompletionsAdapter()
    assert adapter.detect(chunk("x"))
    assert not adapter.detect("x")
    assert not adapter.detect({"choices": []})
    assert not ResponsesAdapter().detect(chunk("x"))


def test_registered_by_name() -> None:
    registry = plugins.get_host().registry("adapters")
    assert isinstance(registry.get("openai"), ChatCompletionsAdapter)
    assert isinstance(registry.get("openai-responses"), ResponsesAdapter)
    record = registry.owner("openai")
    assert record is not None and record.distribution == "l0-openai"


def test_tool_calls_are_assembled_from_fragments() -> None:
    items = [
        chunk(role="assistant", content=None),
        chunk(tool_calls=[tool(0, id="call_a", name="get_weather", args="")]),
        chunk(tool_calls=[tool(0, args='{"ci')]),
        chunk(tool_calls=[tool(0, args='ty": "Par')]),
        chunk(tool_calls=[tool(0, args='is"}')]),
        chunk(tool_calls=[tool(1, id="call_b", name="get_time", args='{"tz"')]),
        chunk(tool_calls=[tool(1, args=': "UTC"}')]),
        chunk(finish="tool_calls"),
    ]
    out, finish = feed_all(items)
    assert out[:-1] == [None] * 7
    calls = out[-1]
    assert [(c.id, c.name, c.arguments, c.index) for c in calls] == [
        ("call_a", "get_weather", {"city": "Paris"}, 0),
        ("call_b", "get_time", {"tz": "UTC"}, 1),
    ]
    assert all(isinstance(c, l0.ToolCall) for c in calls)
    assert finish.finish_reason == "tool_calls"


def test_tool_call_without_arguments_is_an_empty_object() -> None:
    out, _ = feed_all([chunk(tool_calls=[tool(0, id="c", name="now")]), chunk(finish="tool_calls")])
    assert out[-1][0].arguments == {}


@pytest.mark.parametrize("args", ['{"city": "Par', "not json", "[1, 2]", '"text"'])
def test_malformed_tool_arguments_raise(args: str) -> None:
    session = ChatCompletionsAdapter().open()
    session.feed(chunk(tool_calls=[tool(0, id="call_a", name="get_weather", args=args)]))
    with pytest.raises(l0.L0Error) as info:
        session.feed(chunk(finish="tool_calls"))
    error = info.value
    assert error.code is l0.ErrorCode.UNKNOWN_ERROR
    assert "get_weather" in error.message and "call_a" in error.message
    assert error.metadata["arguments"] == args


def test_tool_arguments_cut_by_the_length_limit_are_incomplete() -> None:
    session = ChatCompletionsAdapter().open()
    session.feed(chunk(tool_calls=[tool(0, id="call_a", name="f", args='{"a": ')]))
    with pytest.raises(l0.L0Error) as info:
        session.feed(chunk(finish="length"))
    assert info.value.code is l0.ErrorCode.INCOMPLETE
    assert "length limit" in info.value.message


def test_usage_chunk() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    items = [chunk("Hi"), chunk(finish="stop"), chunk(choices=False, usage=usage)]
    out, finish = feed_all(items)
    assert out == ["Hi", None, None]
    assert finish.usage == usage


@pytest.mark.parametrize("reason", ["stop", "length", "tool_calls", "function_call"])
def test_finish_reasons(reason: str) -> None:
    _, finish = feed_all([chunk("Hi"), chunk(finish=reason)])
    assert finish.finish_reason == reason


def test_text_in_the_final_chunk() -> None:
    out, finish = feed_all([chunk("Hel"), chunk("lo", finish="stop")])
    assert out == ["Hel", "lo"]
    assert finish.finish_reason == "stop"


def test_text_and_finished_tool_calls_in_one_chunk() -> None:
    """One chunk carrying text and the end of tool calls gives both, in order."""
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    items = [chunk(tool_calls=[tool(0, id="c1", name="f", args="{}")]),
             chunk("Done.", finish="tool_calls"), chunk(choices=False, usage=usage)]
    out, finish = feed_all(items)
    assert out[0] is None
    text, call = out[1]
    assert isinstance(text, l0.Token)
    assert text.text == "Done."
    assert isinstance(call, l0.ToolCall)
    assert call.id == "c1"
    assert finish.finish_reason == "tool_calls"


async def test_text_and_tool_calls_in_one_chunk_through_the_runtime() -> None:
    items = [chunk(tool_calls=[tool(0, id="c1", name="f", args='{"a": 1}')]),
             chunk("Done.", finish="tool_calls")]

    async def source() -> Any:
        for item in items:
            yield item

    for on_token in (None, lambda text: None):  # the fast loop and the general one
        stream = l0.run(stream=source, adapter="openai", on_token=on_token)
        kinds = [e.type.value async for e in stream]
        assert kinds == ["token", "tool_call", "complete"]
        assert stream.state.content == "Done."
        assert [c.arguments for c in stream.state.tool_calls] == [{"a": 1}]


def test_content_filter_is_a_content_policy_error() -> None:
    session = ChatCompletionsAdapter().open()
    session.feed(chunk("Hel"))
    with pytest.raises(l0.L0Error) as info:
        session.feed(chunk(finish="content_filter"))
    assert info.value.code is l0.ErrorCode.CONTENT_POLICY


def test_refusal_is_a_content_policy_error() -> None:
    session = ChatCompletionsAdapter().open()
    assert session.feed(chunk(refusal="I can't ")) is None
    assert session.feed(chunk(refusal="help with that.")) is None
    session.feed(chunk(finish="stop"))
    with pytest.raises(l0.L0Error) as info:
        session.finish()
    assert info.value.code is l0.ErrorCode.CONTENT_POLICY
    assert info.value.metadata["refusal"] == "I can't help with that."


def test_no_finish_reason_is_incomplete() -> None:
    session = ChatCompletionsAdapter().open()
    session.feed(chunk("Hel"))
    with pytest.raises(l0.L0Error) as info:
        session.finish()
    assert info.value.code is l0.ErrorCode.INCOMPLETE


def test_choice_index_option() -> None:
    items = [chunk("A0", index=0), chunk("B0", index=1), chunk("A1", index=0),
             chunk("B1", index=1), chunk(finish="stop", index=0), chunk(finish="stop", index=1)]
    out, finish = feed_all(items, {"choice_index": 1})
    assert [o for o in out if o] == ["B0", "B1"]
    assert finish.finish_reason == "stop"
    out, _ = feed_all(items)
    assert [o for o in out if o] == ["A0", "A1"]


def test_azure_chunks_without_choices_or_delta() -> None:
    session = ChatCompletionsAdapter().open()
    first = ChatCompletionChunk.model_construct(
        id="", object="chat.completion.chunk", created=0, model="", choices=[])
    assert session.feed(first) is None
    odd = chunk("x")
    odd.choices[0].delta = None  # type: ignore[assignment]
    assert session.feed(odd) is None
    assert session.feed(chunk("Hi")) == "Hi"


async def test_run_detects_chunks_by_itself() -> None:
    items = [chunk("", role="assistant"), chunk("Hel"), chunk("lo"),
             chunk(tool_calls=[tool(0, id="c1", name="f", args='{"x": 1}')]),
             chunk(finish="tool_calls")]

    async def factory() -> Any:
        for item in items:
            yield item

    stream = l0.run(stream=factory)
    assert await collect(stream) == ["token:Hel", "token:lo", 'tool:c1:f:{"x": 1}',
                                     "complete:Hello"]
    assert stream.state.finish_reason == "tool_calls"


async def test_run_with_the_adapter_by_name() -> None:
    async def factory() -> Any:
        yield chunk("Hi")
        yield chunk(finish="stop")

    assert await l0.run(stream=factory, adapter="openai").read() == "Hi"

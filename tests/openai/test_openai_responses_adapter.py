"""The ``openai-responses`` adapter on pre-built Responses API events.

Events are built leniently, as the SDK builds the ones it receives (their fields vary
between SDK versions).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("openai.types.responses", reason="this openai has no Responses API")

from openai._models import construct_type
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
)

import l0_core as l0
from l0_openai import ChatCompletionsAdapter, ResponsesAdapter


def test_detect() -> None:
    assert ResponsesAdapter().detect(delta("x"))
    assert not ChatCompletionsAdapter().detect(delta("x"))
    assert not ResponsesAdapter().detect("x")


def _response(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-4o",
            "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "status": status, **extra}


def delta(text: str, seq: int = 1) -> ResponseTextDeltaEvent:
    return construct_type(type_=ResponseTextDeltaEvent, value={
        "type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
        "content_index": 0, "delta": text, "logprobs": [], "sequence_number": seq})


def completed(usage: dict[str, Any] | None = None) -> ResponseCompletedEvent:
    return construct_type(type_=ResponseCompletedEvent, value={
        "type": "response.completed", "sequence_number": 9,
        "response": _response("completed", usage=usage)})


def test_responses_text_and_completion() -> None:
    usage = {"input_tokens": 2, "output_tokens": 2, "total_tokens": 4,
             "input_tokens_details": {"cached_tokens": 0},
             "output_tokens_details": {"reasoning_tokens": 0}}
    adapter = ResponsesAdapter()
    assert adapter.detect(delta("x"))
    session = adapter.open()
    assert session.feed(delta("Hel")) == "Hel"
    assert session.feed(delta("lo")) == "lo"
    assert session.feed(completed(usage)) is None
    finish = session.finish()
    assert finish.finish_reason == "stop"
    assert finish.usage is not None and finish.usage["total_tokens"] == 4


def test_responses_function_call() -> None:
    event = construct_type(type_=ResponseOutputItemDoneEvent, value={
        "type": "response.output_item.done", "output_index": 1, "sequence_number": 5,
        "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
                 "arguments": '{"a": 1}', "status": "completed"}})
    session = ResponsesAdapter().open()
    call = session.feed(event)
    assert isinstance(call, l0.ToolCall)
    assert (call.id, call.name, call.arguments, call.index) == ("call_1", "f", {"a": 1}, 1)
    session.feed(completed())
    assert session.finish().finish_reason == "tool_calls"
    bad = event.model_copy(update={"item": event.item.model_copy(update={"arguments": "{"})})
    with pytest.raises(l0.L0Error, match="not valid JSON"):
        ResponsesAdapter().open().feed(bad)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("server_error", l0.ErrorCode.SERVER_ERROR),
     ("rate_limit_exceeded", l0.ErrorCode.RATE_LIMITED),
     ("invalid_prompt", l0.ErrorCode.BAD_REQUEST),
     ("image_content_policy_violation", l0.ErrorCode.CONTENT_POLICY),
     ("vector_store_timeout", l0.ErrorCode.TIMEOUT),
     (None, l0.ErrorCode.SERVER_ERROR)],
)
def test_responses_error_events(code: str | None, expected: l0.ErrorCode) -> None:
    error = construct_type(type_=ResponseErrorEvent, value=
        {"type": "error", "code": code, "message": "boom", "param": None, "sequence_number": 3})
    with pytest.raises(l0.L0Error) as info:
        ResponsesAdapter().open().feed(error)
    assert info.value.code is expected
    assert "boom" in info.value.message
    if code is not None:
        failed = ResponseFailedEvent.model_construct(
            type="response.failed", sequence_number=4,
            response=_Obj(error=_Obj(code=code, message="boom", type=None, param=None)))
        with pytest.raises(l0.L0Error) as info:
            ResponsesAdapter().open().feed(failed)
        assert info.value.code is expected


class _Obj:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


@pytest.mark.parametrize(
    ("reason", "finish_reason"),
    [("max_output_tokens", "length"), ("max_messages", "max_messages")],
)
def test_responses_incomplete(reason: str, finish_reason: str) -> None:
    event = construct_type(type_=ResponseIncompleteEvent, value={
        "type": "response.incomplete", "sequence_number": 3,
        "response": _response("incomplete", incomplete_details={"reason": reason})})
    session = ResponsesAdapter().open()
    assert session.feed(event) is None
    assert session.finish().finish_reason == finish_reason


def test_responses_incomplete_content_filter() -> None:
    event = construct_type(type_=ResponseIncompleteEvent, value={
        "type": "response.incomplete", "sequence_number": 3,
        "response": _response("incomplete", incomplete_details={"reason": "content_filter"})})
    with pytest.raises(l0.L0Error) as info:
        ResponsesAdapter().open().feed(event)
    assert info.value.code is l0.ErrorCode.CONTENT_POLICY


def test_responses_without_a_terminal_event_is_incomplete() -> None:
    session = ResponsesAdapter().open()
    session.feed(delta("Hel"))
    with pytest.raises(l0.L0Error) as info:
        session.finish()
    assert info.value.code is l0.ErrorCode.INCOMPLETE

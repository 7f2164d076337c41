"""Every fault of a real OpenAI-compatible server, through the real SDK, through L0.

Each scenario runs twice: through ``l0.wrap(AsyncOpenAI(...))`` and through
``l0.run`` with a factory that calls the SDK. Each asserts the final text, the
consumer's event sequence, how many requests the server got, how many responses
the client abandoned, and that every connection was closed in the end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

import l0_core as l0
from l0_core.testing.openai_server import OpenAIServer, ToolCallSpec, Turn

from .support import (
    FAST,
    MESSAGES,
    MODEL,
    OK,
    OK_EVENTS,
    SHORT,
    TEXT,
    TOKENS,
    assert_all_closed,
    collect,
    describe,
    raw_client,
)


@dataclass
class Scenario:
    turns: list[Turn]
    events: list[str]
    requests: int
    abandoned: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None


PARTIAL = ["Hello", ", ", "wor"]

SCENARIOS: dict[str, Scenario] = {
    "ok": Scenario([OK], OK_EVENTS, 1),
    "connection cut mid-stream": Scenario(
        [Turn(tokens=PARTIAL, cut_after=2), OK],
        ["token:Hello", "token:, ", "error:NETWORK_ERROR:retry", "discard:Hello, ", *OK_EVENTS],
        2,
    ),
    "connection reset mid-stream": Scenario(
        [Turn(tokens=PARTIAL, cut_after=2, cut_mode="reset"), OK],
        ["token:Hello", "token:, ", "error:NETWORK_ERROR:retry", "discard:Hello, ", *OK_EVENTS],
        2,
    ),
    "connection cut before the first token": Scenario(
        [Turn(tokens=PARTIAL, cut_after=0), OK],
        ["error:NETWORK_ERROR:retry", *OK_EVENTS],
        2,
    ),
    "429 retry-after seconds": Scenario(
        [Turn(status=429, retry_after=1), OK],
        ["error:RATE_LIMITED:retry", *OK_EVENTS],
        2,
        retry_after=1.0,
    ),
    "429 retry-after-ms": Scenario(
        [Turn(status=429, retry_after_ms=1500, retry_after=9), OK],
        ["error:RATE_LIMITED:retry", *OK_EVENTS],
        2,
        retry_after=1.5,
    ),
    "500": Scenario([Turn(status=500), OK], ["error:SERVER_ERROR:retry", *OK_EVENTS], 2),
    "503 twice": Scenario(
        [Turn(status=503), Turn(status=503), OK],
        ["error:SERVER_ERROR:retry", "error:SERVER_ERROR:retry", *OK_EVENTS],
        3,
    ),
    "stall before the headers": Scenario(
        [Turn(tokens=TOKENS, stall_before_headers=True), OK],
        ["error:INITIAL_TOKEN_TIMEOUT:retry", *OK_EVENTS],
        2,
        abandoned=1,
        options={"timeout": SHORT},
    ),
    "stall before the first token": Scenario(
        [Turn(tokens=TOKENS, stall_after=0), OK],
        ["error:INITIAL_TOKEN_TIMEOUT:retry", *OK_EVENTS],
        2,
        abandoned=1,
        options={"timeout": SHORT},
    ),
    "stall mid-stream": Scenario(
        [Turn(tokens=TOKENS, stall_after=2), OK],
        ["token:Hello", "token:, ", "error:INTER_TOKEN_TIMEOUT:retry", "discard:Hello, ",
         *OK_EVENTS],
        2,
        abandoned=1,
        options={"timeout": SHORT},
    ),
    "malformed SSE line": Scenario(
        [Turn(tokens=TOKENS, malformed_after=2), OK],
        ["token:Hello", "token:, ", "error:SERVER_ERROR:retry", "discard:Hello, ", *OK_EVENTS],
        2,
    ),
    "in-band error event": Scenario(
        [Turn(tokens=TOKENS, error_after=2), OK],
        ["token:Hello", "token:, ", "error:SERVER_ERROR:retry", "discard:Hello, ", *OK_EVENTS],
        2,
    ),
    "in-band rate limit": Scenario(
        [Turn(tokens=TOKENS, error_after=0,
              error={"type": "requests", "code": "rate_limit_exceeded"}), OK],
        ["error:RATE_LIMITED:retry", *OK_EVENTS],
        2,
    ),
    "clean end without [DONE] or finish_reason": Scenario(
        [Turn(tokens=PARTIAL, finish_reason=None, done=False), OK],
        ["token:Hello", "token:, ", "token:wor", "error:INCOMPLETE:retry", "discard:Hello, wor",
         *OK_EVENTS],
        2,
    ),
    "finish_reason but no [DONE]": Scenario([Turn(tokens=TOKENS, done=False)], OK_EVENTS, 1),
    "connection close ends the body early": Scenario(
        [Turn(tokens=TOKENS, chunked=False, cut_after=2), OK],
        ["token:Hello", "token:, ", "error:INCOMPLETE:retry", "discard:Hello, ", *OK_EVENTS],
        2,
    ),
    "close-delimited body": Scenario([Turn(tokens=TOKENS, chunked=False)], OK_EVENTS, 1),
    "zero tokens": Scenario([Turn(tokens=[]), OK], ["error:ZERO_OUTPUT:retry", *OK_EVENTS], 2),
    "only whitespace": Scenario(
        [Turn(tokens=[" ", "\n"]), OK],
        ["token: ", "token:\n", "error:ZERO_OUTPUT:retry", "discard: \n", *OK_EVENTS],
        2,
    ),
    "slow but steady": Scenario(
        [Turn(tokens=TOKENS, first_delay=0.1, delay=0.05)],
        OK_EVENTS,
        1,
        options={"timeout": SHORT},
    ),
    "three faults in a row": Scenario(
        [Turn(status=429, retry_after=0), Turn(tokens=PARTIAL, cut_after=1),
         Turn(tokens=TOKENS, error_after=3), OK],
        ["error:RATE_LIMITED:retry", "token:Hello", "error:NETWORK_ERROR:retry",
         "discard:Hello", "token:Hello", "token:, ", "token:world",
         "error:SERVER_ERROR:retry", "discard:Hello, world", *OK_EVENTS],
        4,
    ),
}


def _open(via: str, server: OpenAIServer, client: Any, options: dict[str, Any]) -> Any:
    options = {"timeout": FAST, **options}
    if via == "wrap":
        wrapped = l0.wrap(client, **options)
        return wrapped.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)

    async def factory(resume: l0.Resume | None) -> Any:
        return await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                    stream=True)

    return l0.run(stream=factory, **options)


@pytest.mark.parametrize("via", ["wrap", "run"])
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_fault(name: str, via: str) -> None:
    scenario = SCENARIOS[name]
    async with OpenAIServer(turns=scenario.turns) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, scenario.options)
        assert isinstance(stream, l0.Stream)
        events = await collect(stream)
        assert events == scenario.events
        assert stream.state.content == TEXT
        assert stream.state.completed
        assert len(server.requests) == scenario.requests
        assert all(r.path == "/v1/chat/completions" and r.body["model"] == MODEL
                   for r in server.requests)
        assert all(r.body["messages"] == MESSAGES for r in server.requests)
        if scenario.retry_after is not None:
            assert stream.errors[0].retry_after == scenario.retry_after
        await assert_all_closed(server, client)
        assert server.abandoned == scenario.abandoned


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_errors_carry_status_and_cause(via: str) -> None:
    async with OpenAIServer(turns=[Turn(status=503), OK]) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {})
        assert await stream.read() == TEXT
        (error,) = stream.errors
        assert error.code is l0.ErrorCode.SERVER_ERROR
        assert error.status == 503
        assert type(error.__cause__).__name__ == "InternalServerError"
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_retries_exhausted(via: str) -> None:
    async with OpenAIServer(turns=[Turn(tokens=PARTIAL, cut_after=1)]) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {"retry": l0.Retry(network_attempts=2)})
        events: list[str] = []
        with pytest.raises(l0.L0Error) as info:
            async for event in stream:
                events.append(type(event).__name__)  # noqa: PERF401 - kept when it raises
        assert info.value.code is l0.ErrorCode.NETWORK_ERROR
        assert len(server.requests) == 3  # the first attempt and two retries
        assert events == ["Token", "ErrorEvent", "Discard"] * 2 + ["Token", "ErrorEvent"]
        assert stream.state.content == "Hello"  # nothing more comes: what was delivered stays
        await assert_all_closed(server, client)


@pytest.mark.parametrize(
    ("turn", "code", "status"),
    [
        (Turn(status=401), l0.ErrorCode.AUTH_ERROR, 401),
        (Turn(status=403), l0.ErrorCode.AUTH_ERROR, 403),
        (Turn(status=404), l0.ErrorCode.BAD_REQUEST, 404),
        (Turn(status=422), l0.ErrorCode.BAD_REQUEST, 422),
        (Turn(status=400, error={"code": "context_length_exceeded",
                                 "message": "This model's maximum context length is 8192"}),
         l0.ErrorCode.CONTEXT_LENGTH_EXCEEDED, 400),
        (Turn(status=503, headers={"x-should-retry": "false"}), l0.ErrorCode.BAD_REQUEST, 503),
        (Turn(status=429, error={"code": "insufficient_quota", "type": "insufficient_quota"}),
         l0.ErrorCode.BAD_REQUEST, 429),
    ],
)
@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_not_retried(via: str, turn: Turn, code: l0.ErrorCode, status: int) -> None:
    async with OpenAIServer(turns=[turn, OK]) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {})
        with pytest.raises(l0.L0Error) as info:
            await collect(stream)
        assert info.value.code is code
        assert info.value.status == status
        assert len(server.requests) == 1
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_x_should_retry_true_retries_a_409(via: str) -> None:
    turns = [Turn(status=400, headers={"x-should-retry": "true"}), OK]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {})
        assert await collect(stream) == ["error:SERVER_ERROR:retry", *OK_EVENTS]
        assert len(server.requests) == 2
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_retry_after_above_the_limit_is_not_waited_for(via: str) -> None:
    async with OpenAIServer(turns=[Turn(status=429, retry_after=3600), OK]) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {"retry": l0.Retry(max_retry_after=30)})
        with pytest.raises(l0.L0Error) as info:
            await stream.read()
        assert info.value.code is l0.ErrorCode.RATE_LIMITED
        assert info.value.retry_after == 3600
        assert len(server.requests) == 1
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_content_filter_moves_to_the_fallback(via: str) -> None:
    turns = [Turn(tokens=PARTIAL, finish_reason="content_filter"), OK]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        if via == "wrap":
            stream = await l0.wrap(client, timeout=FAST, fallbacks=[{"model": "gpt-4o-mini"}]) \
                .chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        else:
            def factory_for(model: str) -> Any:
                async def factory() -> Any:
                    return await client.chat.completions.create(
                        model=model, messages=MESSAGES, stream=True)
                return factory

            stream = l0.run(stream=factory_for(MODEL), fallbacks=[factory_for("gpt-4o-mini")],
                            timeout=FAST)
        events = await collect(stream)
        assert events == ["token:Hello", "token:, ", "token:wor", "error:CONTENT_POLICY:fallback",
                          "discard:Hello, wor", *OK_EVENTS]
        assert [r.body["model"] for r in server.requests] == [MODEL, "gpt-4o-mini"]
        assert stream.state.fallback_index == 1
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_finish_reason_length_without_continuation(via: str) -> None:
    async with OpenAIServer(turns=[Turn(tokens=PARTIAL, finish_reason="length")]) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {})
        events = await collect(stream)
        assert events == ["token:Hello", "token:, ", "token:wor", "complete:Hello, wor"]
        assert stream.state.finish_reason == "length"
        assert len(server.requests) == 1
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_tool_calls(via: str) -> None:
    turn = Turn(
        tokens=["Let me check."],
        tool_calls=[ToolCallSpec("get_weather", '{"city": "Paris", "unit": "C"}', "call_a"),
                    ToolCallSpec("get_time", '{"tz": "Europe/Paris"}', "call_b", fragments=5)],
        finish_reason="tool_calls",
    )
    async with OpenAIServer(turns=[turn]) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {})
        events = await collect(stream)
        assert events == [
            "token:Let me check.",
            'tool:call_a:get_weather:{"city": "Paris", "unit": "C"}',
            'tool:call_b:get_time:{"tz": "Europe/Paris"}',
            "complete:Let me check.",
        ]
        assert stream.state.finish_reason == "tool_calls"
        assert [(t.id, t.index) for t in stream.state.tool_calls] == [("call_a", 0), ("call_b", 1)]
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_malformed_tool_arguments_are_an_error_then_retried(via: str) -> None:
    bad = Turn(tool_calls=[ToolCallSpec("get_weather", '{"city": "Par', "call_a")],
               finish_reason="tool_calls")
    good = Turn(tool_calls=[ToolCallSpec("get_weather", '{"city": "Paris"}', "call_b")],
                finish_reason="tool_calls")
    async with OpenAIServer(turns=[bad, good]) as server:
        client = raw_client(server)
        stream = await _open(via, server, client, {})
        events = await collect(stream)
        assert events == ["error:UNKNOWN_ERROR:retry", 'tool:call_b:get_weather:{"city": "Paris"}',
                          "complete:"]
        error = stream.errors[0]
        assert "get_weather" in error.message and "not valid JSON" in error.message
        assert error.metadata["arguments"] == '{"city": "Par'
        assert [t.id for t in stream.state.tool_calls] == ["call_b"]
        await assert_all_closed(server, client)


@pytest.mark.parametrize("via", ["wrap", "run"])
async def test_usage_is_reported(via: str) -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, usage=usage)]) as server:
        client = raw_client(server)
        if via == "wrap":
            stream = await l0.wrap(client).chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True,
                stream_options={"include_usage": True})
        else:
            async def factory() -> Any:
                return await client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True,
                    stream_options={"include_usage": True})
            stream = l0.run(stream=factory)
        events = [e async for e in stream]
        assert events[-1].usage == usage
        assert stream.state.usage == usage
        await assert_all_closed(server, client)


async def test_stream_abandoned_by_the_consumer_is_closed() -> None:
    """The consumer stops reading (breaks out of the loop): the HTTP response is closed."""
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, stall_after=2)]) as server:
        client = raw_client(server)
        wrapped = l0.wrap(client, timeout=FAST)
        async with await wrapped.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                         stream=True) as stream:
            async for event in stream:
                if event.is_token and event.text == ", ":
                    break
        await assert_all_closed(server, client)
        assert server.abandoned == 1
        assert len(server.requests) == 1


async def test_abort_during_a_stall() -> None:
    """``stream.abort()`` from elsewhere interrupts a stalled read and closes the response."""
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, stall_after=1)]) as server:
        client = raw_client(server)
        stream = await l0.wrap(client, timeout=FAST).chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True)
        seen: list[str] = []
        with pytest.raises(l0.L0Error) as info:
            async for event in stream:
                seen.append(describe(event))
                if event.is_token:
                    asyncio.get_running_loop().call_later(0.1, stream.abort)
        assert info.value.code is l0.ErrorCode.STREAM_ABORTED
        assert seen[0] == "token:Hello"
        assert len(server.requests) == 1
        await assert_all_closed(server, client)
        assert server.abandoned == 1

"""``l0.wrap(AsyncOpenAI())``: streams, delegation, fallbacks, continuation, Responses API."""

from __future__ import annotations

from typing import Any

import openai
import pytest

import l0_core as l0
import l0_openai
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
    needs_responses,
    raw_client,
)

# -- the wrapped client ----------------------------------------------------------------------


async def test_wrap_returns_an_l0_stream_awaited_or_not() -> None:
    async with OpenAIServer(turns=[OK]) as server:
        client = l0.wrap(raw_client(server))
        assert isinstance(client, l0_openai.L0AsyncOpenAI)
        created = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        assert isinstance(created, l0.Stream)
        assert await created is created  # awaitable, like the SDK's async create
        assert await created.read() == TEXT
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        assert await collect(stream) == OK_EVENTS
        await assert_all_closed(server, client)


async def test_sdk_retries_are_off_inside_the_wrapper() -> None:
    """The original client retries 5 times on its own; L0's streams must not multiply that."""
    turns = [Turn(status=503), Turn(status=503), OK]
    async with OpenAIServer(turns=turns) as server:
        original = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=5)
        client = l0.wrap(original, retry=l0.Retry(network_attempts=1))
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        with pytest.raises(l0.L0Error) as info:
            await stream.read()
        assert info.value.code is l0.ErrorCode.SERVER_ERROR
        assert len(server.requests) == 2  # L0's first attempt and one retry, nothing more
        assert original.max_retries == 5  # the original client is untouched
        await assert_all_closed(server, client)


async def test_everything_else_is_the_original_client() -> None:
    turns = [Turn(status=429, retry_after=0), Turn(tokens=["Hi", "!"])]
    async with OpenAIServer(turns=turns, models=["gpt-4o", "gpt-4o-mini"]) as server:
        original = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=2)
        client = l0.wrap(original)
        assert client.__wrapped__ is original
        assert client.base_url == original.base_url
        assert client.api_key == "test"
        assert client.max_retries == 2
        models = await client.models.list()
        assert [m.id for m in models.data] == ["gpt-4o", "gpt-4o-mini"]
        # A non-streaming call is the SDK's, with the SDK's own retries (the 429 is retried
        # by the SDK, not by L0).
        completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert isinstance(completion, openai.types.chat.ChatCompletion)
        assert completion.choices[0].message.content == "Hi!"
        assert [r.path for r in server.requests] == ["/v1/models", "/v1/chat/completions",
                                                     "/v1/chat/completions"]
        raw = await client.chat.completions.with_raw_response.create(model=MODEL,
                                                                      messages=MESSAGES)
        assert raw.http_request.url.path == "/v1/chat/completions"
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="text-embedding-3-small", input="hi")
        await assert_all_closed(server, client)


async def test_with_options_returns_a_wrapped_client() -> None:
    async with OpenAIServer(turns=[Turn(status=500), OK]) as server:
        client = l0.wrap(raw_client(server), timeout=FAST, retry=l0.Retry(network_attempts=0))
        other = client.with_options(timeout=30.0)
        assert isinstance(other, l0_openai.L0AsyncOpenAI)
        assert other.timeout == 30.0
        assert isinstance(client.copy(max_retries=1), l0_openai.L0AsyncOpenAI)
        stream = await other.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                     stream=True)
        with pytest.raises(l0.L0Error):  # the wrap options (no network retries) carry over
            await stream.read()
        assert len(server.requests) == 1
        await assert_all_closed(server, client)


async def test_async_with_the_wrapped_client() -> None:
    async with OpenAIServer(turns=[OK]) as server:
        async with l0.wrap(raw_client(server)) as client:
            stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                          stream=True)
            assert await stream.read() == TEXT
        assert await server.wait_disconnected()


async def test_wrap_a_wrapped_client_merges_options() -> None:
    async with OpenAIServer(turns=[Turn(status=500), OK]) as server:
        first = l0.wrap(raw_client(server), timeout=FAST)
        second = l0.wrap(first, retry=l0.Retry(network_attempts=0))
        assert second.__wrapped__ is first.__wrapped__
        stream = await second.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        with pytest.raises(l0.L0Error):
            await stream.read()
        await assert_all_closed(server, first)


async def test_per_call_options() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, stall_after=1), OK]) as server:
        client = l0.wrap(raw_client(server), timeout=FAST)
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, l0={"timeout": SHORT})
        events = await collect(stream)
        assert events == ["token:Hello", "error:INTER_TOKEN_TIMEOUT:retry", "discard:Hello",
                          *OK_EVENTS]
        assert all("l0" not in r.body for r in server.requests)
        with pytest.raises(l0.ConfigError):
            client.chat.completions.create(model=MODEL, messages=MESSAGES, l0={"timeout": SHORT})
        await assert_all_closed(server, client)


def test_sync_client_is_refused() -> None:
    with pytest.raises(l0.ConfigError, match="AsyncOpenAI"):
        l0.wrap(openai.OpenAI(api_key="test"))


def test_unknown_option_is_refused() -> None:
    with pytest.raises(l0.ConfigError, match="retries"):
        l0.wrap(openai.AsyncOpenAI(api_key="test"), retries=3)


def test_bad_fallback_is_refused() -> None:
    with pytest.raises(l0.ConfigError, match="fallback"):
        l0.wrap(openai.AsyncOpenAI(api_key="test"), fallbacks=[42])


# -- fallbacks -------------------------------------------------------------------------------


async def test_fallback_to_another_model() -> None:
    turns = [Turn(status=500), Turn(status=500), OK]
    async with OpenAIServer(turns=turns) as server:
        client = l0.wrap(raw_client(server), timeout=FAST,
                         retry=l0.Retry(network_attempts=1),
                         fallbacks=[{"model": "gpt-4o-mini", "temperature": 0}])
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True, temperature=0.7)
        events = await collect(stream)
        assert events == ["error:SERVER_ERROR:retry", "error:SERVER_ERROR:fallback", *OK_EVENTS]
        bodies = [r.body for r in server.requests]
        assert [(b["model"], b["temperature"]) for b in bodies] == [
            (MODEL, 0.7), (MODEL, 0.7), ("gpt-4o-mini", 0)]
        assert all(b["messages"] == MESSAGES and b["stream"] is True for b in bodies)
        await assert_all_closed(server, client)


async def test_fallback_to_another_client() -> None:
    async with OpenAIServer(turns=[Turn(status=401)]) as primary, \
            OpenAIServer(turns=[OK]) as backup:
        backup_client = openai.AsyncOpenAI(base_url=backup.base_url, api_key="other",
                                           max_retries=4)
        client = l0.wrap(raw_client(primary), timeout=FAST,
                         fallbacks=[{"client": backup_client, "model": "backup-model"}])
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        # AUTH_ERROR halts: fallbacks are for recoverable failures.
        with pytest.raises(l0.L0Error) as info:
            await stream.read()
        assert info.value.code is l0.ErrorCode.AUTH_ERROR
        assert len(backup.requests) == 0

        primary.set_turns([Turn(status=503, headers={"x-should-retry": "false"})])
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        assert await collect(stream) == ["error:BAD_REQUEST:fallback", *OK_EVENTS]
        (request,) = backup.requests
        assert request.body["model"] == "backup-model"
        assert request.headers["authorization"] == "Bearer other"
        await assert_all_closed(primary, client)
        await assert_all_closed(backup, backup_client)


async def test_fallback_to_a_bare_client_and_a_factory() -> None:
    async with OpenAIServer(turns=[Turn(status=400)]) as primary, \
            OpenAIServer(turns=[Turn(status=400), OK]) as backup:
        backup_client = raw_client(backup)
        called: list[Any] = []

        async def last_resort(resume: l0.Resume | None) -> Any:
            called.append(resume)
            return await backup_client.chat.completions.create(
                model="last", messages=MESSAGES, stream=True)

        client = l0.wrap(raw_client(primary), timeout=FAST,
                         fallbacks=[backup_client, last_resort])
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        assert await collect(stream) == ["error:BAD_REQUEST:fallback",
                                         "error:BAD_REQUEST:fallback", *OK_EVENTS]
        assert [r.body["model"] for r in backup.requests] == [MODEL, "last"]
        assert called == [None]
        await assert_all_closed(primary, client)
        await assert_all_closed(backup, backup_client)


async def test_azure_client() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, cut_after=1), OK]) as server:
        azure = openai.AsyncAzureOpenAI(base_url=server.base_url, api_key="azure-key",
                                        api_version="2024-10-21")
        client = l0.wrap(azure, timeout=FAST)
        stream = await client.chat.completions.create(model="my-deployment", messages=MESSAGES,
                                                      stream=True)
        assert await collect(stream) == ["token:Hello", "error:NETWORK_ERROR:retry",
                                         "discard:Hello", *OK_EVENTS]
        assert len(server.requests) == 2
        assert server.requests[0].headers["api-key"] == "azure-key"
        await assert_all_closed(server, client)


# -- continuation ----------------------------------------------------------------------------


async def test_continuation_sends_the_checkpoint_and_the_prompt() -> None:
    turns = [Turn(tokens=["Hello", ", ", "wor"], cut_after=3),
             Turn(tokens=["world", "!"])]
    async with OpenAIServer(turns=turns) as server:
        client = l0.wrap(raw_client(server), timeout=FAST, continue_from_last_good_token=True,
                         build_continuation_prompt=lambda checkpoint: f"Go on from {checkpoint!r}")
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        events = await collect(stream)
        # "wor" is kept; the model repeats it ("world"): the overlap is removed.
        assert events == ["token:Hello", "token:, ", "token:wor", "error:NETWORK_ERROR:retry",
                          "token:ld", "token:!", "complete:Hello, world!"]
        first, second = server.requests
        assert first.body["messages"] == MESSAGES
        assert second.body["messages"] == [
            *MESSAGES,
            {"role": "assistant", "content": "Hello, wor"},
            {"role": "user", "content": "Go on from 'Hello, wor'"},
        ]
        assert stream.state.continuation_used
        await assert_all_closed(server, client)


async def test_continuation_after_finish_reason_length() -> None:
    turns = [Turn(tokens=["Hello", ", "], finish_reason="length"), Turn(tokens=["world", "!"])]
    async with OpenAIServer(turns=turns) as server:
        client = l0.wrap(raw_client(server), timeout=FAST, continue_from_last_good_token=True)
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        assert await stream.read() == TEXT
        second = server.requests[1].body["messages"]
        assert second[-2] == {"role": "assistant", "content": "Hello, "}
        assert second[-1]["role"] == "user" and "Hello, " in second[-1]["content"]
        await assert_all_closed(server, client)


async def test_continuation_into_a_fallback_model() -> None:
    turns = [Turn(tokens=["Hello", ", "], finish_reason="content_filter"),
             Turn(tokens=["world", "!"])]
    async with OpenAIServer(turns=turns) as server:
        client = l0.wrap(raw_client(server), timeout=FAST, continue_from_last_good_token=True,
                         fallbacks=[{"model": "gpt-4o-mini"}])
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        events = await collect(stream)
        assert events[-1] == "complete:Hello, world!"
        second = server.requests[1].body
        assert second["model"] == "gpt-4o-mini"
        assert second["messages"][-2] == {"role": "assistant", "content": "Hello, "}
        await assert_all_closed(server, client)


# -- the Responses API -----------------------------------------------------------------------


@needs_responses
async def test_responses_stream() -> None:
    async with OpenAIServer(turns=[OK]) as server:
        client = l0.wrap(raw_client(server), timeout=FAST)
        stream = await client.responses.create(model=MODEL, input="Say hello", stream=True)
        assert isinstance(stream, l0.Stream)
        events = [e async for e in stream]
        assert [e.text for e in events if e.is_token] == TOKENS
        assert events[-1].is_complete and events[-1].text == TEXT
        assert stream.state.finish_reason == "stop"
        assert stream.state.usage is not None and stream.state.usage["output_tokens"] == 4
        assert server.requests[0].path == "/v1/responses"
        await assert_all_closed(server, client)


RESPONSES_SCENARIOS = {
    "cut": ([Turn(tokens=TOKENS, cut_after=2), OK],
            ["token:Hello", "token:, ", "error:NETWORK_ERROR:retry", "discard:Hello, ",
             *OK_EVENTS]),
    "error event": ([Turn(tokens=TOKENS, error_after=1), OK],
                    ["token:Hello", "error:SERVER_ERROR:retry", "discard:Hello", *OK_EVENTS]),
    "error event, rate limit": (
        [Turn(tokens=TOKENS, error_after=0, error={"code": "rate_limit_exceeded"}), OK],
        ["error:RATE_LIMITED:retry", *OK_EVENTS]),
    "response.failed": ([Turn(tokens=TOKENS, finish_reason="failed"), OK],
                        [*(f"token:{t}" for t in TOKENS), "error:SERVER_ERROR:retry",
                         f"discard:{TEXT}", *OK_EVENTS]),
    "no terminal event": ([Turn(tokens=TOKENS, finish_reason=None), OK],
                          [*(f"token:{t}" for t in TOKENS), "error:INCOMPLETE:retry",
                           f"discard:{TEXT}", *OK_EVENTS]),
    "429": ([Turn(status=429, retry_after_ms=10), OK], ["error:RATE_LIMITED:retry", *OK_EVENTS]),
    "stall": ([Turn(tokens=TOKENS, stall_after=1), OK],
              ["token:Hello", "error:INTER_TOKEN_TIMEOUT:retry", "discard:Hello", *OK_EVENTS]),
}


@needs_responses
@pytest.mark.parametrize("via", ["wrap", "run"])
@pytest.mark.parametrize("name", list(RESPONSES_SCENARIOS))
async def test_responses_faults(name: str, via: str) -> None:
    turns, expected = RESPONSES_SCENARIOS[name]
    async with OpenAIServer(turns=turns) as server:
        raw = raw_client(server)
        if via == "wrap":
            stream = await l0.wrap(raw, timeout=SHORT).responses.create(
                model=MODEL, input="Say hello", stream=True)
        else:
            async def factory() -> Any:
                return await raw.responses.create(model=MODEL, input="Say hello", stream=True)

            stream = l0.run(stream=factory, timeout=SHORT)
        assert await collect(stream) == expected
        assert stream.state.content == TEXT
        assert len(server.requests) == 2
        await assert_all_closed(server, raw)
        assert server.abandoned == (1 if name == "stall" else 0)


@needs_responses
async def test_responses_content_filter_and_length() -> None:
    turns = [Turn(tokens=["Hel"], finish_reason="content_filter"),
             Turn(tokens=TOKENS, finish_reason="length")]
    async with OpenAIServer(turns=turns) as server:
        client = l0.wrap(raw_client(server), timeout=FAST, fallbacks=[{"model": "other"}])
        stream = await client.responses.create(model=MODEL, input="Say hello", stream=True)
        events = await collect(stream)
        assert events == ["token:Hel", "error:CONTENT_POLICY:fallback", "discard:Hel",
                          *OK_EVENTS]
        assert stream.state.finish_reason == "length"
        await assert_all_closed(server, client)


@needs_responses
async def test_responses_function_calls() -> None:
    turn = Turn(tool_calls=[ToolCallSpec("get_weather", '{"city": "Paris"}', "call_1")],
                finish_reason="tool_calls")
    async with OpenAIServer(turns=[turn]) as server:
        client = l0.wrap(raw_client(server), timeout=FAST)
        stream = await client.responses.create(model=MODEL, input="Weather?", stream=True)
        assert await collect(stream) == ['tool:call_1:get_weather:{"city": "Paris"}',
                                         "complete:"]
        assert stream.state.finish_reason == "tool_calls"
        await assert_all_closed(server, client)


@needs_responses
async def test_responses_continuation_request() -> None:
    turns = [Turn(tokens=["Hello", ", "], cut_after=2), Turn(tokens=["world", "!"])]
    async with OpenAIServer(turns=turns) as server:
        client = l0.wrap(raw_client(server), timeout=FAST, continue_from_last_good_token=True,
                         build_continuation_prompt=lambda checkpoint: "Continue.")
        stream = await client.responses.create(model=MODEL, input="Say hello", stream=True,
                                               instructions="Be brief.")
        assert await stream.read() == TEXT
        second = server.requests[1].body
        assert second["instructions"] == "Be brief."
        assert second["input"] == [
            {"role": "user", "content": "Say hello"},
            {"role": "assistant", "content": "Hello, "},
            {"role": "user", "content": "Continue."},
        ]
        await assert_all_closed(server, client)


@needs_responses
async def test_non_streaming_responses_are_the_sdks() -> None:
    async with OpenAIServer(turns=[OK]) as server:
        client = l0.wrap(raw_client(server))
        response = await client.responses.create(model=MODEL, input="Say hello")
        assert response.output_text == TEXT
        await assert_all_closed(server, client)


async def test_wrapped_sources_describe_their_model_to_observers() -> None:
    seen: list[Any] = []
    async with OpenAIServer(turns=[OK]) as server:
        client = l0.wrap(raw_client(server), on_event=lambda e: seen.append(e))
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        assert await stream.read() == TEXT
        await assert_all_closed(server, client)
    (init,) = [e for e in seen if e.type is l0.ObservabilityEventType.STREAM_INIT]
    assert init["source"] == {"provider": "openai", "operation": "chat", "model": MODEL}

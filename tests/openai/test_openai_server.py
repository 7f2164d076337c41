"""``l0_core.testing.openai_server``: the test server itself, through the raw SDK."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, ToolCallSpec, Turn

from .support import MESSAGES, MODEL, TEXT, TOKENS, needs_responses, raw_client


async def test_base_url_and_requests_are_recorded() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS)]) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
        client = raw_client(server, default_headers={"x-test": "yes"})
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True, temperature=0.5)
        chunks = [c async for c in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].choices[0].finish_reason == "stop"
        (request,) = server.requests
        assert (request.method, request.path, request.turn) == ("POST", "/v1/chat/completions", 0)
        assert request.body == {"model": MODEL, "messages": MESSAGES, "stream": True,
                                "temperature": 0.5}
        assert request.messages == MESSAGES and request.stream
        assert request.headers["authorization"] == "Bearer test"
        assert request.headers["x-test"] == "yes"
        await client.close()
        assert await server.wait_disconnected()
        assert server.abandoned == 0 and server.connections == 1


async def test_turns_play_in_order_and_the_last_repeats() -> None:
    turns = [Turn(tokens=["one"]), Turn(tokens=["two"])]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        texts = []
        for _ in range(3):
            completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
            texts.append(completion.choices[0].message.content)
        assert texts == ["one", "two", "two"]
        server.set_turns([Turn(tokens=["three"])])
        completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert completion.choices[0].message.content == "three"
        assert [r.turn for r in server.requests] == [0, 1, 2, 0]
        await client.close()


async def test_turns_from_a_function() -> None:
    def pick(request: RecordedRequest) -> Turn:
        return Turn(tokens=[request.body["model"].upper()])

    async with OpenAIServer(turns=pick) as server:
        client = raw_client(server)
        completion = await client.chat.completions.create(model="abc", messages=MESSAGES)
        assert completion.choices[0].message.content == "ABC"
        await client.close()


async def test_models_endpoints() -> None:
    async with OpenAIServer(models=["m1", "m2"]) as server:
        client = raw_client(server)
        assert [m.id for m in (await client.models.list()).data] == ["m1", "m2"]
        assert (await client.models.retrieve("m2")).id == "m2"
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("nope")
        assert all(r.turn is None for r in server.requests)
        assert server.completion_requests == []
        await client.close()


async def test_non_streaming_chat_completion_with_tools_and_usage() -> None:
    turn = Turn(tokens=["Hi"], tool_calls=[ToolCallSpec("f", '{"a": 1}', "call_1")],
                finish_reason="tool_calls", usage={"prompt_tokens": 1, "completion_tokens": 2,
                                                   "total_tokens": 3})
    async with OpenAIServer(turns=[turn]) as server:
        client = raw_client(server)
        completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        choice = completion.choices[0]
        assert choice.message.content == "Hi"
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls is not None
        call = choice.message.tool_calls[0]
        assert (call.id, call.function.name, call.function.arguments) == ("call_1", "f",
                                                                          '{"a": 1}')
        assert completion.usage is not None and completion.usage.total_tokens == 3
        await client.close()


async def test_error_status_bodies_and_headers() -> None:
    turns = [Turn(status=429, retry_after=7, retry_after_ms=7000,
                  headers={"x-should-retry": "false"}),
             Turn(status=400, error={"code": "context_length_exceeded", "message": "too long"})]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)
        with pytest.raises(openai.RateLimitError) as rate:
            await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        headers = rate.value.response.headers
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("7", "7000")
        assert headers["x-should-retry"] == "false"
        assert rate.value.code == "rate_limit_exceeded"
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        assert bad.value.code == "context_length_exceeded"
        assert "too long" in bad.value.message
        await client.close()


async def test_streamed_tool_calls_and_usage() -> None:
    turn = Turn(tool_calls=[ToolCallSpec("get_weather", '{"city": "Paris"}', "call_9",
                                         fragments=4)],
                finish_reason="tool_calls")
    async with OpenAIServer(turns=[turn]) as server:
        client = raw_client(server)
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        deltas = [c.choices[0].delta.tool_calls[0] for c in chunks
                  if c.choices and c.choices[0].delta.tool_calls]
        assert deltas[0].id == "call_9" and deltas[0].function.name == "get_weather"
        assert all(d.id is None for d in deltas[1:])
        assert "".join(d.function.arguments or "" for d in deltas) == '{"city": "Paris"}'
        assert len(deltas) == 5  # the name, then four argument fragments
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        await client.close()


async def test_several_choices() -> None:
    async with OpenAIServer(turns=[Turn(tokens=["a", "b"], choices=[["x", "y", "z"]])]) as server:
        client = raw_client(server)
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True, n=2)
        texts = {0: "", 1: ""}
        async for c in stream:
            for choice in c.choices:
                texts[choice.index] += choice.delta.content or ""
        assert texts == {0: "ab", 1: "xyz"}
        await client.close()


async def test_stall_counts_as_abandoned_when_the_client_leaves() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, stall_after=1)]) as server:
        client = raw_client(server)
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        iterator = stream.__aiter__()
        await iterator.__anext__()  # the role chunk
        await iterator.__anext__()  # "Hello"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(iterator.__anext__(), 0.2)
        assert server.active == 1
        await stream.close()
        assert await server.wait_idle()
        assert server.abandoned == 1
        await client.close()
        assert await server.wait_disconnected()


async def test_client_leaving_a_slow_stream_counts_as_abandoned() -> None:
    async with OpenAIServer(turns=[Turn(tokens=["x"] * 200, delay=0.01)]) as server:
        client = raw_client(server)
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        iterator = stream.__aiter__()
        for _ in range(3):
            await iterator.__anext__()
        await stream.close()
        assert await server.wait_idle()
        assert server.abandoned == 1
        await client.close()
        assert await server.wait_disconnected()


async def test_finite_stall_then_the_rest() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS, stall_after=2, stall_for=0.1)]) as server:
        client = raw_client(server)
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == TEXT
        assert server.abandoned == 0
        await client.close()


async def test_stop_closes_stalled_connections() -> None:
    server = await OpenAIServer(turns=[Turn(stall_before_headers=True)]).start()
    client = raw_client(server)
    task = asyncio.create_task(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                              stream=True))
    await asyncio.sleep(0.1)
    await server.stop()
    with pytest.raises(openai.APIConnectionError):
        await task
    assert server.open_connections == 0
    await client.close()


async def test_unknown_path_is_a_404() -> None:
    async with OpenAIServer() as server:
        client = raw_client(server)
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="e", input="x")
        await client.close()


@needs_responses
async def test_responses_api_stream_events() -> None:
    async with OpenAIServer(turns=[Turn(tokens=TOKENS)]) as server:
        client = raw_client(server)
        stream = await client.responses.create(model=MODEL, input="hi", stream=True)
        events = [e async for e in stream]
        types = [e.type for e in events]
        assert types[:4] == ["response.created", "response.in_progress",
                             "response.output_item.added", "response.content_part.added"]
        assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                              "response.output_item.done", "response.completed"]
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT
        assert [e.sequence_number for e in events] == list(range(len(events)))
        completed = events[-1]
        assert completed.response.output_text == TEXT
        response = await client.responses.create(model=MODEL, input="hi")
        assert response.output_text == TEXT
        await client.close()


async def test_raw_sse_wire_format() -> None:
    """The bytes on the wire, read with a plain socket."""
    async with OpenAIServer(turns=[Turn(tokens=["Hi"])]) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = json.dumps({"model": MODEL, "messages": MESSAGES, "stream": True}).encode()
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: application/json\r\n"
                     + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in head
        assert b"content-type: text/event-stream" in head
        raw = await reader.readuntil(b"0\r\n\r\n")
        assert raw.count(b"data: ") == 4  # role, "Hi", finish, [DONE]
        assert b"data: [DONE]\n\n" in raw
        writer.close()
        await writer.wait_closed()
        assert await server.wait_disconnected()

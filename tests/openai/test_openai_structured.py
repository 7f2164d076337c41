"""Structured output through the real openai SDK against the fault-injecting server:
``l0.structured`` with an SDK factory, and ``response_format=Model`` on a wrapped client."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import l0_core as l0
from l0_core.testing.openai_server import OpenAIServer, Turn

from .support import FAST, MESSAGES, MODEL, assert_all_closed, raw_client

ROOT = Path(__file__).resolve().parents[2]


class Profile(BaseModel):
    name: str
    age: int


GOOD = Turn(tokens=['{"name": ', '"Alice", ', '"age": 30}'])


async def test_wrapped_response_format_model_asks_natively_and_validates() -> None:
    async with OpenAIServer(turns=[GOOD]) as server:
        client = l0.wrap(raw_client(server), timeout=FAST)
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, response_format=Profile, stream=True)
        assert isinstance(stream, l0.StructuredStream)
        seen = [item async for item in stream]
        assert seen[-1] == Profile(name="Alice", age=30)
        result = await stream.result()
        assert result.data == Profile(name="Alice", age=30) and result.name == "Alice"
        assert result.raw == '{"name": "Alice", "age": 30}' and result.corrections == ()
        body = server.requests[-1].body
        assert body["response_format"]["type"] == "json_schema"
        schema = body["response_format"]["json_schema"]
        assert schema["name"] == "Profile"
        assert schema["schema"]["required"] == ["name", "age"]
        await assert_all_closed(server, client)


async def test_wrapped_invalid_answer_is_asked_again_then_repaired() -> None:
    turns = [
        Turn(tokens=['{"name": "Alice", "age": "thirty"}']),        # fails the schema
        Turn(tokens=["Here you go:\n```json\n", "{'name': 'Alice', age: 30,}", "\n```"]),
    ]
    async with OpenAIServer(turns=turns) as server:
        client = l0.wrap(raw_client(server), timeout=FAST)
        types: list[str] = []
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, response_format=Profile, stream=True,
            l0={"on_event": lambda e: types.append(e.type.value), "feedback": True})
        result = await stream.result()
        assert result.data == Profile(name="Alice", age=30)
        assert len(server.requests) == 2
        assert [c.type for c in result.corrections] == [
            "prose_before", "markdown_fence", "single_quotes", "single_quotes", "unquoted_key",
            "trailing_comma"]
        assert [(a.attempt, a.stage) for a in result.attempts] == [(1, "validation")]
        # feedback: the rejected answer and the reasons went back to the model
        messages = server.requests[1].body["messages"]
        assert messages[-2] == {"role": "assistant",
                                "content": '{"name": "Alice", "age": "thirty"}'}
        assert "age: Input should be a valid integer" in messages[-1]["content"]
        assert types.count("STRUCTURED_VALIDATION_ERROR") == 1
        assert types.count("STRUCTURED_AUTO_CORRECT_END") == 1
        await assert_all_closed(server, client)


async def test_structured_with_an_sdk_factory_survives_a_cut_connection() -> None:
    turns = [Turn(tokens=['{"name": ', '"Al'], cut_after=1), GOOD]
    async with OpenAIServer(turns=turns) as server:
        client = raw_client(server)

        def ask() -> Any:
            return client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)

        result = await l0.structured(Profile, ask, timeout=FAST)
        assert result.data == Profile(name="Alice", age=30)
        assert [e.code for e in result.errors] == [l0.ErrorCode.NETWORK_ERROR]
        assert len(server.requests) == 2
        await assert_all_closed(server, client)


async def test_every_attempt_invalid_raises_structured_error_and_closes_everything() -> None:
    async with OpenAIServer(turns=[Turn(tokens=["I cannot answer that."])]) as server:
        client = l0.wrap(raw_client(server), timeout=FAST, retry=l0.Retry(attempts=2))
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, response_format=Profile, stream=True)
        with pytest.raises(l0.StructuredError) as info:
            await stream.result()
        assert [a.stage for a in info.value.attempts] == ["parse", "parse", "parse"]
        assert len(server.requests) == 3
        await assert_all_closed(server, client)


def _readme_structured_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## Structured output\n.*?```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, "README.md has no structured output example"
    return match.group(1)


async def test_readme_structured_example_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with OpenAIServer(turns=[GOOD]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        source = _readme_structured_block()
        code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        namespace: dict[str, Any] = {}
        await eval(code, namespace)
        assert capsys.readouterr().out.splitlines() == ["Alice"]
        assert server.requests[-1].body["stream"] is True
        await namespace["client"].close()
        assert await server.wait_disconnected()


async def test_concurrent_structured_streams_keep_their_own_state() -> None:
    """30 conversations at once; every third answers badly first: each result is its own,
    each retry happened where it should, every connection is closed."""
    attempts: dict[int, int] = {}

    def turn_for(request: Any) -> Turn:
        key = int(request.messages[0]["content"].removeprefix("conversation "))
        attempts[key] = attempts.get(key, 0) + 1
        if key % 3 == 0 and attempts[key] == 1:
            return Turn(tokens=[f'{{"name": "user {key}", ', '"age": "unknown"}'])
        return Turn(tokens=[f'{{"name": "user {key}", ', f'"age": {key}}}'], delay=0.001)

    async with OpenAIServer(turns=turn_for) as server:
        client = l0.wrap(raw_client(server), timeout=FAST)

        async def converse(i: int) -> l0.StructuredResult[Any]:
            stream = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"conversation {i}"}],
                response_format=Profile, stream=True)
            return await stream.result()

        results = await asyncio.gather(*(converse(i) for i in range(30)))
        for i, result in enumerate(results):
            assert result.data == Profile(name=f"user {i}", age=i)
            assert len(result.attempts) == (1 if i % 3 == 0 else 0)
            assert attempts[i] == (2 if i % 3 == 0 else 1)
        assert len({r.stream_id for r in results}) == 30
        await assert_all_closed(server, client)


class Tree(BaseModel):
    name: str
    children: list[Tree] = []


async def test_wrapped_native_off_sends_no_response_format_and_recursive_models_stream() -> None:
    turn = Turn(tokens=['{"name": "r", ', '"children": [{"name": ', '"c"}]}'])
    async with OpenAIServer(turns=[turn]) as server:
        client = l0.wrap(raw_client(server), timeout=FAST)
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, response_format=Tree, stream=True,
            l0={"native": False})
        seen = [item async for item in stream]
        assert seen[-1] == Tree(name="r", children=[Tree(name="c")])
        assert "response_format" not in server.requests[-1].body
        with pytest.raises(l0.ConfigError, match="native"):
            await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, response_format=Tree, stream=True,
                l0={"native": "no"})
        await assert_all_closed(server, client)

"""Helpers for the orchestration tests: a server whose answer depends on the model asked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import openai

import l0_core as l0
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

FAST = l0.Timeout(initial_token=5.0, inter_token=5.0)


def by_model(turns: Mapping[str, list[Turn] | Turn]) -> Callable[[RecordedRequest], Turn]:
    """A turn function: each model plays its own list of turns (the last one repeats)."""
    seen: dict[str, int] = {}

    def turn_for(request: RecordedRequest) -> Turn:
        model = request.body["model"]
        plan = turns[model]
        if isinstance(plan, Turn):
            return plan
        n = seen.get(model, 0)
        seen[model] = n + 1
        return plan[min(n, len(plan) - 1)]

    return turn_for


def client_for(server: OpenAIServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)


def ask(client: openai.AsyncOpenAI, model: str, prompt: str = "Hi") -> Callable[[], Any]:
    """A stream factory for one chat completion."""
    def factory() -> Any:
        return client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], stream=True)

    return factory


def words(text: str) -> list[str]:
    """``text`` as tokens of one word each (spaces kept with the words)."""
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


async def settled(server: OpenAIServer, client: openai.AsyncOpenAI) -> None:
    """No response is left half-written, and no connection left once the client closes."""
    assert await server.wait_idle(), f"{server.active} response(s) still being written"
    await client.close()
    assert await server.wait_disconnected(), f"{server.open_connections} connection(s) open"


async def eventually(predicate: Callable[[], bool], within: float = 3.0) -> bool:
    """Wait until ``predicate()`` holds (the server sees a closed socket a moment later)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True

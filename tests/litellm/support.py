"""Helpers for the LiteLLM integration tests."""

from __future__ import annotations

from typing import Any

from l0_core.testing.openai_server import OpenAIServer
from tests.stream_support import (
    FAST,
    MESSAGES,
    MODEL,
    OK,
    OK_EVENTS,
    SHORT,
    TEXT,
    TOKENS,
    collect,
    describe,
)

__all__ = [
    "FAST",
    "LITELLM_MODEL",
    "MESSAGES",
    "MODEL",
    "OK",
    "OK_EVENTS",
    "SHORT",
    "TEXT",
    "TOKENS",
    "assert_disconnected",
    "assert_idle",
    "collect",
    "describe",
    "litellm_args",
]

LITELLM_MODEL = f"openai/{MODEL}"  # LiteLLM's OpenAI-compatible provider, pointed at api_base


def litellm_args(server: OpenAIServer, **extra: Any) -> dict[str, Any]:
    """The arguments that point ``litellm.acompletion`` at the test server, retries off."""
    return {"model": LITELLM_MODEL, "messages": MESSAGES, "stream": True,
            "api_base": server.base_url, "api_key": "test", "num_retries": 0, "max_retries": 0,
            **extra}


async def assert_idle(server: OpenAIServer) -> None:
    """No response is left half-written: every abandoned stream was closed by L0."""
    assert await server.wait_idle(), f"{server.active} response(s) still being written"


async def assert_disconnected(server: OpenAIServer) -> None:
    """Once LiteLLM's cached HTTP clients are closed, no connection is left open."""
    import litellm

    await assert_idle(server)
    await litellm.close_litellm_async_clients()
    assert await server.wait_disconnected(), f"{server.open_connections} connection(s) open"

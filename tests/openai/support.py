"""Helpers for the OpenAI integration tests."""

from __future__ import annotations

import importlib.util
from typing import Any

import openai
import pytest

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
    "HAS_RESPONSES",
    "MESSAGES",
    "MODEL",
    "OK",
    "OK_EVENTS",
    "SHORT",
    "TEXT",
    "TOKENS",
    "assert_all_closed",
    "collect",
    "describe",
    "needs_responses",
    "raw_client",
]

HAS_RESPONSES = importlib.util.find_spec("openai.types.responses") is not None
needs_responses = pytest.mark.skipif(not HAS_RESPONSES,
                                     reason="the installed openai has no Responses API")


def raw_client(server: OpenAIServer, **kwargs: Any) -> openai.AsyncOpenAI:
    """An SDK client for the test server (SDK retries off: L0 does the retrying)."""
    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test", **kwargs)


async def assert_all_closed(server: OpenAIServer, *clients: Any) -> None:
    """No response is left half-written (every abandoned stream was closed by L0), and
    once the clients are closed no connection is left open."""
    assert await server.wait_idle(), f"{server.active} response(s) still being written"
    for client in clients:
        await client.close()
    assert await server.wait_disconnected(), f"{server.open_connections} connection(s) open"
    assert server.open_connections == 0

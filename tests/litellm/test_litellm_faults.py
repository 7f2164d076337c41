"""Every fault of a real OpenAI-compatible server, through the real litellm library, through L0.

Each scenario runs twice: through ``l0.run(stream=lambda: litellm.acompletion(...))`` (the
seed's example, as written) and through ``l0_litellm.acompletion``. Each asserts the final
text, the consumer's event sequence, how many requests the server got, how many responses
were abandoned, and that no response is left half-written.

LiteLLM reports a stream that breaks after its first chunk (a cut connection, a malformed
line, an in-band error, a stream that ends without a finish reason) as a
``MidStreamFallbackError`` wrapping an ``APIConnectionError``: L0 classifies it by what it
was raised from - the provider's in-band error event by its ``code`` / ``type``, a malformed
event as ``SERVER_ERROR`` (as l0-openai does) - and otherwise as ``NETWORK_ERROR``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import litellm
import pytest

import l0_core as l0
import l0_litellm
from l0_core.testing.openai_server import OpenAIServer, Turn

from .support import (
    FAST,
    LITELLM_MODEL,
    MESSAGES,
    MODEL,
    OK,
    OK_EVENTS,
    SHORT,
    TEXT,
    TOKENS,
    assert_disconnected,
    assert_idle,
    collect,
    litellm_args,
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
CUT = ["token:Hello", "token:, ", "error:NETWORK_ERROR:retry", "discard:Hello, ", *OK_EVENTS]
BROKEN = ["token:Hello", "token:, ", "error:SERVER_ERROR:retry", "discard:Hello, ", *OK_EVENTS]

SCENARIOS: dict[str, Scenario] = {
    "ok": Scenario([OK], OK_EVENTS, 1),
    "connection cut mid-stream": Scenario([Turn(tokens=PARTIAL, cut_after=2), OK], CUT, 2),
    "connection reset mid-stream": Scenario(
        [Turn(tokens=PARTIAL, cut_after=2, cut_mode="reset"), OK], CUT, 2),
    "connection cut before the first token": Scenario(
        [Turn(tokens=PARTIAL, cut_after=0), OK], ["error:NETWORK_ERROR:retry", *OK_EVENTS], 2),
    "429 retry-after seconds": Scenario(
        [Turn(status=429, retry_after=1), OK], ["error:RATE_LIMITED:retry", *OK_EVENTS], 2,
        retry_after=1.0),
    "429 retry-after-ms": Scenario(
        [Turn(status=429, retry_after_ms=1500, retry_after=9), OK],
        ["error:RATE_LIMITED:retry", *OK_EVENTS], 2, retry_after=1.5),
    "500": Scenario([Turn(status=500), OK], ["error:SERVER_ERROR:retry", *OK_EVENTS], 2),
    "503 twice": Scenario(
        [Turn(status=503), Turn(status=503), OK],
        ["error:SERVER_ERROR:retry", "error:SERVER_ERROR:retry", *OK_EVENTS], 3),
    "stall before the headers": Scenario(
        [Turn(tokens=TOKENS, stall_before_headers=True), OK],
        ["error:INITIAL_TOKEN_TIMEOUT:retry", *OK_EVENTS], 2, abandoned=1,
        options={"timeout": SHORT}),
    "stall before the first token": Scenario(
        [Turn(tokens=TOKENS, stall_after=0), OK],
        ["error:INITIAL_TOKEN_TIMEOUT:retry", *OK_EVENTS], 2, abandoned=1,
        options={"timeout": SHORT}),
    "stall mid-stream": Scenario(
        [Turn(tokens=TOKENS, stall_after=2), OK],
        ["token:Hello", "token:, ", "error:INTER_TOKEN_TIMEOUT:retry", "discard:Hello, ",
         *OK_EVENTS], 2, abandoned=1, options={"timeout": SHORT}),
    "malformed SSE line": Scenario([Turn(tokens=TOKENS, malformed_after=2), OK], BROKEN, 2),
    "in-band error event": Scenario([Turn(tokens=TOKENS, error_after=2), OK], BROKEN, 2),
    "in-band rate limit": Scenario(
        [Turn(tokens=TOKENS, error_after=0,
              error={"type": "requests", "code": "rate_limit_exceeded"}), OK],
        ["error:RATE_LIMITED:retry", *OK_EVENTS], 2),
    "clean end without [DONE] or finish_reason": Scenario(
        [Turn(tokens=PARTIAL, finish_reason=None, done=False), OK],
        ["token:Hello", "token:, ", "token:wor", "error:NETWORK_ERROR:retry",
         "discard:Hello, wor", *OK_EVENTS], 2),
    "finish_reason but no [DONE]": Scenario([Turn(tokens=TOKENS, done=False)], OK_EVENTS, 1),
    "zero tokens": Scenario([Turn(tokens=[]), OK], ["error:ZERO_OUTPUT:retry", *OK_EVENTS], 2),
    "three faults in a row": Scenario(
        [Turn(status=429, retry_after=0), Turn(tokens=PARTIAL, cut_after=1),
         Turn(status=502), OK],
        ["error:RATE_LIMITED:retry", "token:Hello", "error:NETWORK_ERROR:retry",
         "discard:Hello", "error:SERVER_ERROR:retry", *OK_EVENTS], 4),
}



async def _open(via: str, server: OpenAIServer, options: dict[str, Any]) -> l0.Stream:
    options = {"timeout": FAST, **options}
    if via == "run":  # the seed's example, as written
        return l0.run(stream=lambda: litellm.acompletion(**litellm_args(server)), **options)
    return await l0_litellm.acompletion(model=LITELLM_MODEL, messages=MESSAGES,
                                        api_base=server.base_url, api_key="test", **options)


@pytest.mark.parametrize("via", ["run", "acompletion"])
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_fault(name: str, via: str) -> None:
    scenario = SCENARIOS[name]
    async with OpenAIServer(turns=scenario.turns) as server:
        stream = await _open(via, server, scenario.options)
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
        await assert_idle(server)
        assert server.abandoned == scenario.abandoned
        await assert_disconnected(server)

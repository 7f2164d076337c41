"""``l0_litellm.acompletion``: fallbacks across model names, the seed's fallback from an
OpenAI client to a LiteLLM model, continuation from the checkpoint, LiteLLM's own retries
off, and the factory's description for observers."""

from __future__ import annotations

from typing import Any

import litellm
import openai

import l0_core as l0
import l0_litellm
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

from .support import (
    FAST,
    LITELLM_MODEL,
    MESSAGES,
    OK,
    OK_EVENTS,
    TEXT,
    assert_disconnected,
    collect,
    litellm_args,
)


def _primary_down(request: RecordedRequest) -> Turn:
    return Turn(status=500) if (request.body or {}).get("model") == "primary" else OK


async def test_a_model_that_is_down_falls_back_to_the_next_model_name() -> None:
    async with OpenAIServer(turns=_primary_down) as server:
        stream = await l0_litellm.acompletion(
            model="openai/primary", messages=MESSAGES, fallbacks=["openai/backup"],
            api_base=server.base_url, api_key="test", timeout=FAST,
            retry=l0.Retry(network_attempts=1, max_retries=2),
        )
        assert await collect(stream) == ["error:SERVER_ERROR:retry", "error:SERVER_ERROR:fallback",
                                         *OK_EVENTS]
        # two requests to the primary (one retry), one to the backup: LiteLLM retried nothing
        assert [r.body["model"] for r in server.requests] == ["primary", "primary", "backup"]
        assert all(r.body["messages"] == MESSAGES for r in server.requests)
        await assert_disconnected(server)


async def test_a_fallback_can_override_litellm_arguments() -> None:
    async with OpenAIServer(turns=[Turn(status=500)]) as primary, \
            OpenAIServer(turns=[OK]) as backup:
        stream = await l0_litellm.acompletion(
            model=LITELLM_MODEL, messages=MESSAGES, api_base=primary.base_url, api_key="test",
            fallbacks=[{"model": "openai/backup", "api_base": backup.base_url}],
            timeout=FAST, retry=l0.Retry(network_attempts=0, max_retries=0), temperature=0.5,
        )
        assert await stream.read() == TEXT
        assert len(primary.requests) == 1
        (request,) = backup.requests
        assert request.body["model"] == "backup"
        assert request.body["temperature"] == 0.5


async def test_an_openai_client_falls_back_to_a_litellm_model() -> None:
    """The seed's fallback example: OpenAI first, a LiteLLM model when OpenAI is down."""
    async with OpenAIServer(turns=[Turn(status=503)]) as openai_server, \
            OpenAIServer(turns=[OK]) as litellm_server:
        client = openai.AsyncOpenAI(base_url=openai_server.base_url, api_key="test",
                                    max_retries=0)
        stream = l0.run(
            stream=lambda: client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                          stream=True),
            fallbacks=[lambda: litellm.acompletion(**litellm_args(litellm_server,
                                                                  model="openai/haiku"))],
            retry=l0.Retry(network_attempts=0, max_retries=0), timeout=FAST,
        )
        assert await collect(stream) == ["error:SERVER_ERROR:fallback", *OK_EVENTS]
        assert len(openai_server.requests) == 1
        assert [r.body["model"] for r in litellm_server.requests] == ["haiku"]
        await client.close()


async def test_continuation_sends_the_checkpoint_to_the_next_attempt() -> None:
    cut = Turn(tokens=["Hello", ", ", "wor"], cut_after=2)
    rest = Turn(tokens=["world", "!"])
    async with OpenAIServer(turns=[cut, rest]) as server:
        stream = await l0_litellm.acompletion(
            model=LITELLM_MODEL, messages=MESSAGES, api_base=server.base_url, api_key="test",
            timeout=FAST, continue_from_last_good_token=True,
            build_continuation_prompt=lambda checkpoint: f"Continue after {checkpoint!r}.",
        )
        assert await stream.read() == TEXT
        first, second = server.requests
        assert first.body["messages"] == MESSAGES
        assert second.body["messages"] == [
            *MESSAGES,
            {"role": "assistant", "content": "Hello, "},
            {"role": "user", "content": "Continue after 'Hello, '."},
        ]


async def test_the_factory_describes_its_model_to_observers() -> None:
    seen: list[Any] = []
    async with OpenAIServer(turns=[OK]) as server:
        stream = await l0_litellm.acompletion(
            model=LITELLM_MODEL, messages=MESSAGES, api_base=server.base_url, api_key="test",
            timeout=FAST, on_event=seen.append,
        )
        assert await stream.read() == TEXT
        # LiteLLM's retries are off in every request it makes
        (request,) = server.requests
        assert request.body["stream"] is True
    (init,) = [e for e in seen if e.type is l0.ObservabilityEventType.STREAM_INIT]
    assert init["source"] == {"provider": "litellm", "operation": "chat",
                              "model": LITELLM_MODEL}


def test_litellm_s_retries_are_off_and_options_are_split() -> None:
    factory = l0_litellm.completion_factory({"model": "m", "messages": []})
    assert factory.l0_source == {  # type: ignore[attr-defined]
        "provider": "litellm", "model": "m", "operation": "chat"}
    assert "retry" in l0_litellm.run.L0_OPTIONS
    assert "api_base" not in l0_litellm.run.L0_OPTIONS
    request = l0_litellm.run._request("m", [], {"num_retries": 5})
    assert (request["num_retries"], request["max_retries"], request["stream"]) == (0, 0, True)

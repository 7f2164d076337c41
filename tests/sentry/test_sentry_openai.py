"""l0-sentry with the real openai SDK and Sentry's own OpenAI integration: one ``gen_ai.chat``
span per request, never two."""

from __future__ import annotations

import openai
import pytest
import sentry_sdk
from sentry_sdk.integrations.openai import OpenAIIntegration

import l0_core as l0
from l0_core.plugins import host as plugins
from l0_core.testing.openai_server import OpenAIServer, Turn
from tests.sentry.conftest import Init, supports

MESSAGES = [{"role": "user", "content": "Say hello."}]
TURNS = [Turn(status=503), Turn(tokens=["Hello", "!"])]


@pytest.fixture(autouse=True)
def _openai_plugin(instant: None) -> None:
    host = plugins.get_host()
    if "openai" not in host.registry("adapters"):
        import l0_openai.plugin

        host.register(l0_openai.plugin, "l0-openai")


async def _chat(server: OpenAIServer) -> str:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    wrapped = l0.wrap(client, observers=["sentry"],
                      timeout=l0.Timeout(initial_token=5.0, inter_token=5.0))
    with sentry_sdk.start_transaction(name="request"):
        stream = await wrapped.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                       stream=True)
        text = await stream.read()
    await client.close()
    return str(text)


async def test_without_sentrys_openai_integration_l0_makes_the_gen_ai_spans(
    sentry: Init,
) -> None:
    captured = sentry()
    async with OpenAIServer(turns=TURNS) as server:
        assert await _chat(server) == "Hello!"
    chats = [s for s in captured.spans if s["op"] == "gen_ai.chat"]
    assert [(s["origin"], s["description"], s["status"]) for s in chats] == [
        ("auto.ai.l0", "chat gpt-4o", "error"), ("auto.ai.l0", "chat gpt-4o", "ok")]
    assert chats[1]["data"]["gen_ai.system"] == "openai"
    assert chats[0]["data"]["l0.error_code"] == "SERVER_ERROR"


async def test_with_sentrys_openai_integration_there_is_one_span_per_request(
    sentry: Init,
) -> None:
    captured = sentry(integrations=[OpenAIIntegration()])
    async with OpenAIServer(turns=TURNS) as server:
        assert await _chat(server) == "Hello!"
    spans = captured.spans
    theirs = [s for s in spans if s["origin"] == "auto.ai.openai"]
    ours = [s for s in spans if s["origin"] == "auto.ai.l0" and s["op"] != "l0.session"]
    assert ours == []  # the attempts are Sentry's spans: one per request
    # (op gen_ai.chat; old sentry-sdk versions named it otherwise and lost the failed one's)
    assert len(theirs) == 2 if supports("trace_lifecycle") else 1 <= len(theirs) <= 2
    (session,) = [s for s in spans if s["op"] == "l0.session"]
    assert session["status"] == "ok" and session["data"]["l0.attempts"] == 2
    # Sentry's integration reports the failed request itself (L0 recovered: nothing from L0)
    assert [e["exception"]["values"][-1]["mechanism"]["type"] for e in captured.events] \
        == ["openai"]

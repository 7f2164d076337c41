"""The real OpenAI SDK against the fault-injecting server, traced.

The HTTP layer is traced the way an HTTP client instrumentation does it: a span started
in the client's request hook, with whatever context is current, and ended when the
response arrives. The attempt span is current exactly while L0 opens the stream, so each
request's span is the child of its attempt's span.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import l0_core as l0
from l0_core.plugins import host as plugins
from l0_core.testing.openai_server import OpenAIServer, Turn

from .conftest import Otel
from .support import REQUEST, attrs, parent_id, span_id

TOKENS = ["Hello", ", ", "world", "!"]
USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


@pytest.fixture(autouse=True)
def _openai_plugin() -> None:
    """The l0-openai plugin is found through its entry point; make sure of it."""
    host = plugins.get_host()
    if "openai" not in host.registry("adapters"):
        import l0_openai.plugin

        host.register(l0_openai.plugin, "l0-openai")


def _traced_client(server: OpenAIServer, otel: Otel) -> openai.AsyncOpenAI:
    """An SDK client whose HTTP requests are spans, parented by the current context."""
    tracer = otel.tracer_provider.get_tracer("http")
    open_spans: dict[int, Any] = {}

    async def on_request(request: Any) -> None:
        open_spans[id(request)] = tracer.start_span("POST", kind=SpanKind.CLIENT)

    async def on_response(response: Any) -> None:
        span = open_spans.pop(id(response.request))
        span.set_attribute("http.response.status_code", response.status_code)
        span.end()

    http = httpx2.AsyncClient(event_hooks={"request": [on_request], "response": [on_response]})
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0,
                              http_client=http)


async def test_a_retried_sdk_call_nests_each_request_under_its_attempt(otel: Otel) -> None:
    async with OpenAIServer(turns=[Turn(status=503), Turn(tokens=TOKENS, usage=USAGE)]) as srv:
        client = _traced_client(srv, otel)
        stream = await l0.wrap(client, observers=[otel.observer()]).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}], stream=True,
            stream_options={"include_usage": True})
        assert await stream.read() == "Hello, world!"
        await client.close()
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.UNSET
    assert {k: v for k, v in attrs(session).items() if k.startswith("gen_ai.")} == {
        **REQUEST, "gen_ai.system": "openai", "gen_ai.response.model": "gpt-4o",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 4,
    }
    assert attrs(session)["l0.attempts"] == 2
    first, second = sorted((s for s in otel.spans() if s.name.startswith("l0.attempt")),
                           key=lambda s: s.name)
    assert attrs(first)["error.type"] == "SERVER_ERROR"
    requests = sorted((s for s in otel.spans() if s.name == "POST"),
                      key=lambda s: s.start_time or 0)
    assert [attrs(r)["http.response.status_code"] for r in requests] == [503, 200]
    assert [parent_id(r) for r in requests] == [span_id(first), span_id(second)]
    assert {parent_id(first), parent_id(second)} == {span_id(session)}
    usage = {a["gen_ai.token.type"]: p.sum for a, p in otel.points("gen_ai.client.token.usage")}
    assert usage == {"input": 11, "output": 4}
    for point_attrs, _ in otel.points("gen_ai.client.token.usage"):
        assert point_attrs == {**REQUEST, "gen_ai.response.model": "gpt-4o",
                               "gen_ai.token.type": point_attrs["gen_ai.token.type"]}

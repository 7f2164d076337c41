"""Concurrent sessions never share span state; message content only on opt-in; by name."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

import l0_core as l0
import l0_otel.observer
from l0_core.plugins import host as plugins
from l0_core.testing import Script
from l0_otel import OtelObserver
from l0_otel._telemetry import telemetry

from .conftest import Otel
from .support import attrs, events, parent_id, source, span_id


@pytest.mark.parametrize("shared", [True, False], ids=["one-observer", "observer-per-session"])
async def test_100_concurrent_sessions_keep_their_own_spans(otel: Otel, shared: bool) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    one = otel.observer()

    async def session(i: int) -> tuple[int, int, str]:
        scripts = [Script([f"s{i}-", "a", "b"], delay=0.001)]
        if i % 2 == 0:  # every other session fails once, mid-stream, and retries
            scripts.insert(0, Script([f"s{i}-", "x", "y"], delay=0.001, fail_after=2))
        model = {"provider": "openai", "model": f"m{i}", "operation": "chat"}
        with tracer.start_as_current_span(f"caller {i}") as caller:
            stream = l0.run(stream=source(*scripts, described=model), retry=l0.Retry(attempts=3),
                            observers=[one if shared else otel.observer()])
            assert await stream.read() == f"s{i}-ab"
        return i, span_id(caller), stream.id

    done = await asyncio.gather(*(session(i) for i in range(100)))
    spans = otel.spans()
    by_id = {span_id(s): s for s in spans}
    sessions = {s.attributes["l0.session.id"]: s for s in spans if s.name.startswith("chat ")}
    assert len(sessions) == 100
    for i, caller_id, stream_id in done:
        session = sessions[stream_id]
        assert session.name == f"chat m{i}"
        assert parent_id(session) == caller_id
        assert by_id[caller_id].name == f"caller {i}"
        assert session.status.status_code is StatusCode.UNSET
        expected = 2 if i % 2 == 0 else 1
        assert attrs(session)["l0.attempts"] == expected
        assert attrs(session)["l0.retries"] == expected - 1
        assert [name for name, _ in events(session)] == ["l0.retry"] * (expected - 1)
        attempts = [s for s in spans if parent_id(s) == span_id(session)]
        assert sorted(s.name for s in attempts) == [f"l0.attempt {n + 1}"
                                                    for n in range(expected)]
        assert {s.attributes["gen_ai.request.model"] for s in attempts} == {f"m{i}"}
    assert otel.value("gen_ai.client.operation.duration") == 100
    assert otel.value("l0.retries") == 50
    models = Counter(a["gen_ai.request.model"] for a, _ in otel.points("l0.retries"))
    assert models == Counter({f"m{i}": 1 for i in range(0, 100, 2)})
    assert one._sessions == {}  # nothing kept after the sessions ended


async def test_no_message_content_by_default(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["a secret ", "answer"])), observers=[otel.observer()])
    assert await stream.read() == "a secret answer"
    recorded = repr([(attrs(s), events(s)) for s in otel.spans()])
    assert "secret" not in recorded
    assert "gen_ai.output.messages" not in recorded


@pytest.mark.parametrize("value", ["true", "True", "SPAN_ONLY", "span_and_event"])
async def test_content_when_the_genai_variable_opts_in(
    otel: Otel, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    stream = l0.run(stream=source(Script(["a secret ", "answer"])), observers=[otel.observer()])
    assert await stream.read() == "a secret answer"
    messages = json.loads(attrs(otel.span("chat gpt-4o"))["gen_ai.output.messages"])
    assert messages == [{"role": "assistant", "finish_reason": "stop",
                         "parts": [{"type": "text", "content": "a secret answer"}]}]


@pytest.mark.parametrize("value", ["false", "", "EVENT_ONLY", "NO_CONTENT"])
async def test_no_content_when_the_variable_does_not_opt_in(
    otel: Otel, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    stream = l0.run(stream=source(Script(["a secret"])), observers=[otel.observer()])
    await stream.read()
    assert "gen_ai.output.messages" not in attrs(otel.span("chat gpt-4o"))


def test_the_entry_point_registers_the_otel_observer() -> None:
    registry = plugins.get_host().registry("observers")
    assert registry.get("otel") is OtelObserver
    owner = registry.owner("otel")
    assert owner is not None
    assert (owner.distribution, owner.status) == ("l0-otel", "loaded")
    assert owner.registered == {"observers": ["otel"]}


@pytest.fixture
def global_like(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> Otel:
    """Observers made by name use the global providers; the test's stand in for them (the
    global providers can be set once per process, so no test sets them)."""
    def providers(tracer_provider: Any = None, meter_provider: Any = None) -> Any:
        assert tracer_provider is None and meter_provider is None
        return telemetry(otel.tracer_provider, otel.meter_provider)

    monkeypatch.setattr(l0_otel.observer, "telemetry", providers)
    return otel


async def test_enabled_by_name_one_observer_per_session(global_like: Otel) -> None:
    streams = [l0.run(stream=source(Script(["hi"])), observers=["otel"]) for _ in range(3)]
    assert await asyncio.gather(*(s.read() for s in streams)) == ["hi"] * 3
    ids = sorted(s.attributes["l0.session.id"] for s in global_like.spans()
                 if s.name == "chat gpt-4o")
    assert ids == sorted(s.id for s in streams)


async def test_enabled_by_the_l0_observers_variable(
    global_like: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("L0_OBSERVERS", "otel")
    stream = l0.run(stream=source(Script(["hi"])))
    assert await stream.read() == "hi"
    assert attrs(global_like.span("chat gpt-4o"))["l0.session.id"] == stream.id


async def test_enabled_in_l0_toml_with_options(
    global_like: Otel, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    (tmp_path / "l0.toml").write_text(
        'observers = [{ name = "otel", capture_content = true }]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    stream = l0.run(stream=source(Script(["from ", "toml"])))
    assert await stream.read() == "from toml"
    session = global_like.span("chat gpt-4o")
    assert attrs(session)["l0.session.id"] == stream.id
    assert "from toml" in attrs(session)["gen_ai.output.messages"]


def test_an_unknown_option_in_l0_toml_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    (tmp_path / "l0.toml").write_text('observers = [{ name = "otel", exporter = "x" }]\n',
                                      encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(l0.ConfigError, match="exporter"):
        l0.run(stream=source(Script(["x"])))


def test_the_tracer_and_instruments_are_made_once_per_pair_of_providers(otel: Otel) -> None:
    one = telemetry(otel.tracer_provider, otel.meter_provider)
    assert telemetry(otel.tracer_provider, otel.meter_provider) is one
    assert otel.observer()._t is one  # an observer per session costs no new instruments
    assert telemetry(otel.tracer_provider, None) is not one

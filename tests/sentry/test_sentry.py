"""l0-sentry against the real sentry-sdk: what each kind of session sends, exactly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from typing import Any

import pytest
import sentry_sdk

import l0_core as l0
from l0_core.plugins import config
from l0_core.plugins.host import get_host
from l0_core.testing import Script, ScriptedSource
from l0_sentry import L0Integration, SentryObserver
from tests.sentry.conftest import Captured, Init, supports

pytestmark = pytest.mark.usefixtures("instant")

SECRET = "the secret answer"


def described(factory: Callable[..., Any], model: str, provider: str = "acme") -> Any:
    """A factory that says what it is, as ``l0.wrap`` does."""
    factory.l0_source = {"provider": provider, "model": model, "operation": "chat"}  # type: ignore[attr-defined]
    return factory


def down(model: str) -> Any:
    async def factory() -> AsyncIterator[str]:
        raise ConnectionResetError("connection reset")
        yield ""

    return described(factory, model)


def answers(model: str, *tokens: str) -> Any:
    async def factory() -> AsyncIterator[str]:
        for token in tokens:
            yield token

    return described(factory, model)


def l0_crumbs(event: dict[str, Any]) -> list[tuple[str, str]]:
    crumbs = event.get("breadcrumbs", {}).get("values", [])
    return [(c["category"], c["message"]) for c in crumbs
            if str(c.get("category", "")).startswith("l0.")]


def crumbs_after(captured: Captured) -> list[tuple[str, str]]:
    """The ``l0.*`` breadcrumbs an application event sent now would carry."""
    before = len(captured.events)
    sentry_sdk.capture_message("after")
    return l0_crumbs(captured.events[before])


async def fails(stream: l0.Stream) -> l0.L0Error:
    with pytest.raises(l0.L0Error) as info:
        await stream.read()
    return info.value


# -- registration -------------------------------------------------------------------------------


def test_the_observer_is_registered_by_entry_point_as_sentry() -> None:
    (point,) = [p for p in entry_points(group="l0") if p.name == "sentry"]
    assert point.value == "l0_sentry.plugin"
    assert get_host().registry("observers").get("sentry") is SentryObserver


async def test_without_sentry_initialised_the_observer_does_nothing() -> None:
    sentry_sdk.init(default_integrations=False)  # an inactive client
    assert await l0.run(stream=answers("m", "hi"), observers=["sentry"]).read() == "hi"


# -- outcomes ------------------------------------------------------------------------------------


async def test_a_successful_session_sends_nothing_and_leaves_no_breadcrumbs(
    sentry: Init,
) -> None:
    captured = sentry()
    assert await l0.run(stream=answers("m", "Hello"), observers=["sentry"]).read() == "Hello"
    assert captured.events == []
    assert crumbs_after(captured) == []


async def test_retry_then_success_leaves_breadcrumbs_and_sends_no_error(sentry: Init) -> None:
    captured = sentry()
    source = ScriptedSource([Script(["a", "b"], fail_after=1), Script(["ok"])])
    assert await l0.run(stream=source, observers=["sentry"]).read() == "ok"
    assert captured.events == []
    assert crumbs_after(captured) == [
        ("l0.error", "attempt 1 failed: NETWORK_ERROR"),
        ("l0.retry", "retry 1"),
    ]


async def test_a_fallback_leaves_breadcrumbs_and_no_event_by_default(sentry: Init) -> None:
    captured = sentry()
    stream = l0.run(stream=down("primary"), fallbacks=[answers("backup", "saved")],
                    retry=l0.Retry(network_attempts=0), observers=["sentry"])
    assert await stream.read() == "saved"
    assert captured.events == []
    assert crumbs_after(captured) == [
        ("l0.error", "attempt 1 failed: NETWORK_ERROR"),
        ("l0.fallback", "fallback 1"),
    ]


@pytest.mark.parametrize("how", ["integration", "config"])
async def test_a_degraded_session_is_a_warning_when_opted_in(sentry: Init, how: str) -> None:
    captured = sentry(L0Integration(capture_degraded=how == "integration"))
    options: dict[str, Any] = {"observers": ["sentry"]}
    if how == "config":  # observers = [{ name = "sentry", capture_degraded = true }]
        options = {"config": config.load(environ={
            "L0_OBSERVERS": '[{"name": "sentry", "capture_degraded": true}]'})}
    stream = l0.run(stream=down("primary"), fallbacks=[answers("backup", "saved")],
                    retry=l0.Retry(network_attempts=0), **options)
    assert await stream.read() == "saved"
    (event,) = captured.events
    assert event["level"] == "warning"
    assert event["message"] == "L0 session recovered on fallback 1 after NETWORK_ERROR"
    assert event["fingerprint"] == ["l0", "degraded", "NETWORK_ERROR"]
    assert event["tags"] == {"l0.error_code": "NETWORK_ERROR", "l0.fallback_index": "1",
                             "l0.provider": "acme", "l0.model": "backup", "l0.degraded": "true"}
    assert event["contexts"]["l0"]["models"] == ["primary", "backup"]
    assert l0_crumbs(event) == [("l0.error", "attempt 1 failed: NETWORK_ERROR"),
                                ("l0.fallback", "fallback 1")]


async def test_a_failed_session_sends_exactly_one_event_with_the_whole_story(
    sentry: Init,
) -> None:
    captured = sentry()
    stream = l0.run(stream=down("primary"), fallbacks=[down("backup")],
                    retry=l0.Retry(network_attempts=1), observers=["sentry"],
                    context={"request_id": "r-1"})
    error = await fails(stream)
    assert error.code is l0.ErrorCode.ALL_STREAMS_EXHAUSTED
    (event,) = captured.events  # four failed attempts, one event
    assert event["level"] == "error"
    assert event["fingerprint"] == ["l0", "NETWORK_ERROR"]
    assert event["tags"] == {"l0.error_code": "NETWORK_ERROR", "l0.fallback_index": "1",
                             "l0.provider": "acme", "l0.model": "backup"}
    assert event["contexts"]["l0"] == {
        "stream_id": stream.id,
        "error_codes": ["NETWORK_ERROR"] * 4,
        "attempts": 4,
        "fallback_index": 1,
        "models": ["primary", "backup"],
        "checkpoint_length": 0,
        "error_code": "NETWORK_ERROR",
        "error_category": "network",
    }
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "NetworkError"
    assert exception["mechanism"]["type"] == "l0"
    assert l0_crumbs(event) == [
        ("l0.error", "attempt 1 failed: NETWORK_ERROR"), ("l0.retry", "retry 1"),
        ("l0.error", "attempt 2 failed: NETWORK_ERROR"), ("l0.fallback", "fallback 1"),
        ("l0.error", "attempt 3 failed: NETWORK_ERROR"), ("l0.retry", "retry 1"),
        ("l0.error", "attempt 4 failed: NETWORK_ERROR"),
    ]
    crumbs = event["breadcrumbs"]["values"]
    assert {c["data"]["stream_id"] for c in crumbs} == {stream.id}
    assert crumbs[-1]["data"] == {"code": "NETWORK_ERROR", "attempt": 4, "fallback_index": 1,
                                  "recovery": "halt", "will_retry": False,
                                  "will_fallback": False, "stream_id": stream.id}


async def test_a_fatal_error_is_one_event_grouped_by_its_code(sentry: Init) -> None:
    captured = sentry()
    for _ in range(2):
        denied = l0.L0Error("the key was refused", l0.ErrorCode.AUTH_ERROR)
        source = ScriptedSource([Script(["a"], fail_after=1, error=denied)])
        error = await fails(l0.run(stream=source, observers=["sentry"]))
        assert isinstance(error, l0.FatalError)
    dropped = ScriptedSource([Script(["a"], fail_after=1)])
    await fails(l0.run(stream=dropped, retry=l0.Retry.none(), observers=["sentry"]))
    fingerprints = [event["fingerprint"] for event in captured.events]
    assert fingerprints == [["l0", "AUTH_ERROR"], ["l0", "AUTH_ERROR"], ["l0", "NETWORK_ERROR"]]
    assert captured.events[0]["contexts"]["l0"]["error_codes"] == ["AUTH_ERROR"]
    assert captured.events[0]["contexts"]["l0"]["error_category"] == "provider"


async def test_an_abort_sends_no_event(sentry: Init) -> None:
    captured = sentry()
    stream = l0.run(stream=ScriptedSource([Script(["a", "b", "c"], delay=0.01)]),
                    observers=["sentry"])
    with pytest.raises(l0.AbortedError):
        async for event in stream:
            if event.is_token:
                stream.abort()
    assert captured.events == []
    assert crumbs_after(captured) == [("l0.abort", "session aborted")]


async def test_capture_errors_off_and_ignored_codes_send_nothing(sentry: Init) -> None:
    captured = sentry(L0Integration(capture_errors=False))
    await fails(l0.run(stream=down("m"), retry=l0.Retry.none(), observers=["sentry"]))
    captured = sentry(L0Integration(ignore_codes={"NETWORK_ERROR"}))
    await fails(l0.run(stream=down("m"), retry=l0.Retry.none(), observers=["sentry"]))
    assert captured.events == []


async def test_timeouts_guardrails_and_drift_leave_breadcrumbs(sentry: Init) -> None:
    captured = sentry()
    source = ScriptedSource([Script(["a"], stall_after=1), Script(["TODO"]), Script(["done"])])
    rule = l0.CustomPatternRule([r"\bTODO\b"], message="placeholder left in")
    stream = l0.run(stream=source, guardrails=[rule], observers=["sentry"],
                    timeout=l0.Timeout(initial_token=1.0, inter_token=0.05))
    assert await stream.read() == "done"
    categories = [category for category, _ in crumbs_after(captured)]
    assert categories == ["l0.timeout", "l0.error", "l0.retry",
                          "l0.guardrail", "l0.error", "l0.retry"]


# -- concurrency ---------------------------------------------------------------------------------


async def test_100_concurrent_sessions_never_mix_breadcrumbs_or_scopes(sentry: Init) -> None:
    captured = sentry()

    async def request(i: int) -> tuple[int, str]:
        with sentry_sdk.isolation_scope() as scope:  # what a web framework does per request
            scope.set_tag("request", str(i))
            fail = i % 2 == 0
            source = ScriptedSource([Script(["x"], fail_after=1, delay=0.001),
                                     Script(["y"], fail_after=1 if fail else None, delay=0.001)])
            stream = l0.run(stream=source, retry=l0.Retry(network_attempts=1),
                            observers=["sentry"])
            try:
                await stream.read()
            except l0.L0Error:
                assert fail
            sentry_sdk.capture_message(f"after {i}")
            return i, stream.id

    ids = dict(await asyncio.gather(*(request(i) for i in range(100))))
    errors = [e for e in captured.events if e.get("exception")]
    afters = [e for e in captured.events if str(e.get("message", "")).startswith("after")]
    assert len(errors) == 50 and len(afters) == 100
    for event in errors:
        i = int(event["tags"]["request"])
        assert i % 2 == 0 and event["contexts"]["l0"]["stream_id"] == ids[i]
        assert {c["data"]["stream_id"] for c in event["breadcrumbs"]["values"]} == {ids[i]}
        assert len(l0_crumbs(event)) == 3
    for event in afters:
        i = int(event["tags"]["request"])
        assert event["message"] == f"after {i}"
        assert {c["data"]["stream_id"] for c in event["breadcrumbs"]["values"]} == {ids[i]}


async def test_sessions_sharing_a_scope_hand_over_their_breadcrumbs_in_blocks(
    sentry: Init,
) -> None:
    captured = sentry()

    async def session() -> None:
        source = ScriptedSource([Script(["x"], fail_after=1, delay=0.001), Script(["y"])])
        await l0.run(stream=source, observers=["sentry"]).read()

    await asyncio.gather(*(session() for _ in range(20)))
    sentry_sdk.capture_message("after")
    crumbs = captured.events[0]["breadcrumbs"]["values"]
    runs = [c["data"]["stream_id"] for i, c in enumerate(crumbs)
            if i == 0 or c["data"]["stream_id"] != crumbs[i - 1]["data"]["stream_id"]]
    assert len(runs) == len(set(runs)) == 20  # one contiguous block per session


# -- spans ---------------------------------------------------------------------------------------


async def test_spans_nest_under_the_current_transaction(sentry: Init) -> None:
    captured = sentry()
    source = described(ScriptedSource([Script(["a"], fail_after=1), Script(["ok"])]), "m1")
    with sentry_sdk.start_transaction(name="request") as transaction:
        assert await l0.run(stream=source, observers=["sentry"]).read() == "ok"
    spans = captured.spans
    (session,) = [s for s in spans if s["op"] == "l0.session"]
    assert session["parent_span_id"] == transaction.span_id
    assert session["status"] == "ok" and session["origin"] == "auto.ai.l0"
    assert session["data"]["l0.attempts"] == 2
    attempts = [s for s in spans if s["op"] == "gen_ai.chat"]
    assert [(s["description"], s["parent_span_id"], s["data"]["l0.attempt"]) for s in attempts] \
        == [("chat m1", session["span_id"], 1), ("chat m1", session["span_id"], 2)]
    assert [s["data"].get("l0.error_code") for s in attempts] == ["NETWORK_ERROR", None]
    assert {s["origin"] for s in attempts} == {"auto.ai.l0"}
    assert attempts[1]["data"]["gen_ai.request.model"] == "m1"
    assert attempts[1]["data"]["gen_ai.system"] == "acme"
    assert attempts[1]["data"]["gen_ai.response.streaming"] is True
    assert attempts[1]["data"]["gen_ai.response.finish_reasons"] == ["stop"]


@pytest.mark.skipif(not supports("trace_lifecycle"), reason="sentry-sdk without span streaming")
async def test_spans_in_the_streaming_trace_lifecycle(sentry: Init) -> None:
    captured = sentry(trace_lifecycle="stream")
    source = described(ScriptedSource([Script(["a"], fail_after=1), Script(["ok"])]), "m1")
    with sentry_sdk.traces.start_span(name="request") as root:
        assert await l0.run(stream=source, observers=["sentry"]).read() == "ok"
    spans = captured.spans
    (session,) = [s for s in spans if s["op"] == "l0.session"]
    assert session["parent_span_id"] == root.span_id and session["status"] == "ok"
    attempts = [s for s in spans if s["op"] == "gen_ai.chat"]
    assert [(s["description"], s["parent_span_id"], s["status"]) for s in attempts] \
        == [("chat m1", session["span_id"], "error"), ("chat m1", session["span_id"], "ok")]


async def test_no_spans_outside_a_transaction_or_when_turned_off(sentry: Init) -> None:
    captured = sentry()
    await l0.run(stream=answers("m", "a"), observers=["sentry"]).read()
    assert captured.spans == []
    captured = sentry(L0Integration(spans=False))
    with sentry_sdk.start_transaction(name="request"):
        await l0.run(stream=answers("m", "a"), observers=["sentry"]).read()
    assert captured.spans == []


# -- text ----------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The send_default_pii option is deprecated")
@pytest.mark.parametrize(("pii", "include"), [(False, False), (True, False), (False, True),
                                              (True, True)])
async def test_text_is_sent_only_with_send_default_pii_and_include_prompts(
    sentry: Init, pii: bool, include: bool
) -> None:
    captured = sentry(L0Integration(include_prompts=include), send_default_pii=pii)
    with sentry_sdk.start_transaction(name="request"):
        ok = described(ScriptedSource([Script([SECRET])]), "m")
        assert await l0.run(stream=ok, observers=["sentry"]).read() == SECRET
        broken = ScriptedSource([Script([SECRET, " and more"], fail_after=1)])
        await fails(l0.run(stream=broken, retry=l0.Retry.none(), observers=["sentry"],
                           continue_from_last_good_token=True))
    sent = json.dumps([captured.events, captured.transactions, captured.spans], default=str)
    assert (SECRET in sent) is (pii and include)
    (event,) = captured.events
    assert event["contexts"]["l0"]["checkpoint_length"] == len(SECRET)


@pytest.mark.skipif(not supports("data_collection"), reason="sentry-sdk without data_collection")
@pytest.mark.parametrize(("outputs", "include"), [(True, True), (False, True), (True, False)])
async def test_data_collection_gen_ai_outputs_decides_for_newer_sentry_sdks(
    sentry: Init, outputs: bool, include: bool
) -> None:
    captured = sentry(L0Integration(include_prompts=include),
                      data_collection={"gen_ai": {"inputs": False, "outputs": outputs}})
    with sentry_sdk.start_transaction(name="request"):
        ok = described(ScriptedSource([Script([SECRET])]), "m")
        assert await l0.run(stream=ok, observers=["sentry"]).read() == SECRET
    sent = json.dumps([captured.transactions, captured.spans], default=str)
    assert (SECRET in sent) is (outputs and include)


async def test_drift_leaves_a_breadcrumb(sentry: Init) -> None:
    captured = sentry()

    class Drifting:
        """Reports drift in any text that mentions 'off-topic'."""

        def check_delta(self, delta: str, offset: int) -> l0.DriftResult | None:
            return l0.DriftResult(["topic"], 0.9) if "off-topic" in delta else None

    source = ScriptedSource([Script(["off-topic"]), Script(["on topic"])])
    stream = l0.run(stream=source, drift=Drifting, observers=["sentry"])
    assert await stream.read() == "on topic"
    crumbs = crumbs_after(captured)
    assert crumbs[0] == ("l0.drift", "drift detected")
    assert [category for category, _ in crumbs] == ["l0.drift", "l0.error", "l0.retry"]


def test_an_option_the_observer_does_not_take_is_a_config_error() -> None:
    with pytest.raises(l0.ConfigError, match="observer 'sentry' does not take these options"):
        config.load(environ={"L0_OBSERVERS": '[{"name": "sentry", "colour": "red"}]'})


async def test_the_integration_alone_reports_every_session(sentry: Init) -> None:
    captured = sentry()  # sentry_sdk.init(integrations=[L0Integration()]), no observers=
    stream = l0.run(stream=down("primary"), fallbacks=[down("backup")],
                    retry=l0.Retry(network_attempts=1))
    await fails(stream)
    (event,) = captured.events
    assert event["fingerprint"] == ["l0", "NETWORK_ERROR"]
    assert event["contexts"]["l0"]["stream_id"] == stream.id
    # naming the observer as well still makes one report, not two
    named = l0.run(stream=down("primary"), retry=l0.Retry(network_attempts=0),
                   observers=["sentry"])
    await fails(named)
    assert len(captured.events) == 2


async def test_without_the_integration_unnamed_sessions_report_nothing(sentry: Init) -> None:
    captured = sentry()
    sentry_sdk.init(dsn="https://public@sentry.example/1", transport=type(captured.transport),
                    default_integrations=False)  # a client without L0Integration
    transport = sentry_sdk.get_client().transport
    await fails(l0.run(stream=down("primary"), retry=l0.Retry(network_attempts=0)))
    sentry_sdk.flush()
    assert not [item for envelope in transport.envelopes  # type: ignore[union-attr]
                for item in envelope.items if item.type == "event"]

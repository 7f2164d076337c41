"""Every path of a session, traced through the real OpenTelemetry SDK.

Each test asserts the span tree (names, kinds, parents), the exact attributes and status
of the session span, the attempt spans, the span events, and the metric points. The
``otel`` fixture also checks, after each test, that every span started was ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import l0_core as l0
from l0_core.guardrails.drift import DriftResult
from l0_core.testing import Script

from .conftest import Otel
from .support import MINI, REQUEST, attrs, events, parent_id, source, span_id, summary

FAST_RETRY = l0.Retry(attempts=3)


def _attempts(otel: Otel) -> list[Any]:
    return sorted((s for s in otel.spans() if s.name.startswith("l0.attempt")),
                  key=lambda s: s.attributes["l0.attempt.number"])


async def test_success_is_one_client_span_under_the_callers_span(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as caller:
        stream = l0.run(stream=source(Script(["Hello", ", ", "world"])),
                        observers=[otel.observer()])
        assert await stream.read() == "Hello, world"
        assert trace.get_current_span() is caller  # nothing left attached
    session = otel.span("chat gpt-4o")
    assert session.kind is SpanKind.CLIENT
    assert parent_id(session) == span_id(caller)
    assert session.status.status_code is StatusCode.UNSET
    assert attrs(session) == {
        "l0.session.id": stream.id, **REQUEST, "gen_ai.system": "openai",
        "gen_ai.response.model": "gpt-4o", "gen_ai.response.finish_reasons": ("stop",),
        **summary(),
    }
    assert events(session) == []
    (attempt,) = _attempts(otel)
    assert attempt.name == "l0.attempt 1"
    assert attempt.kind is SpanKind.INTERNAL
    assert parent_id(attempt) == span_id(session)
    assert attempt.status.status_code is StatusCode.UNSET
    assert attrs(attempt) == {"l0.attempt.number": 1, "l0.fallback.index": 0,
                              "gen_ai.request.model": "gpt-4o"}
    assert len(otel.spans()) == 3  # caller, session, attempt
    (point_attrs, point), = otel.points("gen_ai.client.operation.duration")
    assert point_attrs == {**REQUEST, "gen_ai.response.model": "gpt-4o"}
    assert point.count == 1
    assert 0 <= point.sum < 5
    assert otel.value("gen_ai.client.operation.time_to_first_chunk", **REQUEST) == 1
    assert otel.points("gen_ai.client.token.usage") == []  # a text stream reports no usage
    for counter in ("l0.retries", "l0.fallbacks", "l0.timeouts", "l0.guardrail.violations",
                    "l0.drift.detections"):
        assert otel.points(counter) == [], counter


async def test_an_undescribed_factory_still_gets_a_session_span(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["hi"]), described=None), observers=[otel.observer()])
    assert await stream.read() == "hi"
    session = otel.span("l0.session")
    assert attrs(session) == {"l0.session.id": stream.id,
                              "gen_ai.response.finish_reasons": ("stop",), **summary()}
    (point_attrs, _), = otel.points("gen_ai.client.operation.duration")
    assert point_attrs == {}


async def test_retry_is_a_failed_attempt_span_and_a_retry_event(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["a", "b"], fail_after=1), Script(["a", "b"])),
                    retry=FAST_RETRY, observers=[otel.observer()])
    assert await stream.read() == "ab"
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.UNSET
    assert attrs(session)["l0.attempts"] == 2
    assert {k: v for k, v in attrs(session).items() if k.startswith("l0.retries")} == {
        "l0.retries": 1, "l0.retries.network": 1, "l0.retries.model": 0}
    ((name, event),) = events(session)
    assert name == "l0.retry"
    assert event["l0.attempt.number"] == 1
    assert event["error.type"] == "NETWORK_ERROR"
    first, second = _attempts(otel)
    assert first.status.status_code is StatusCode.ERROR
    assert first.status.description == "NETWORK_ERROR"
    assert attrs(first) == {"l0.attempt.number": 1, "l0.fallback.index": 0,
                            "gen_ai.request.model": "gpt-4o", "error.type": "NETWORK_ERROR",
                            "l0.error.category": "network", "l0.recovery": "retry"}
    assert second.status.status_code is StatusCode.UNSET
    assert parent_id(first) == parent_id(second) == span_id(session)
    assert first.end_time is not None and second.start_time is not None
    assert first.end_time <= second.start_time
    assert [a for a, _ in otel.points("l0.retries")] == [
        {**REQUEST, "l0.retry.reason": "NETWORK_ERROR"}]
    assert otel.value("l0.retries") == 1
    assert otel.value("gen_ai.client.operation.time_to_first_chunk") == 2


async def test_fallback_names_the_fallback_model_as_the_response_model(otel: Otel) -> None:
    primary = source(Script(["x"], fail_after=0))
    backup = source(Script(["from ", "mini"]), described=MINI)
    stream = l0.run(stream=primary, fallbacks=[backup], retry=l0.Retry(attempts=1),
                    observers=[otel.observer()])
    assert await stream.read() == "from mini"
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.UNSET
    assert attrs(session) == {
        "l0.session.id": stream.id, **REQUEST, "gen_ai.system": "openai",
        "gen_ai.response.model": "gpt-4o-mini", "gen_ai.response.finish_reasons": ("stop",),
        # a network error has its own retry budget (two), then the fallback's attempt
        **summary(l0__attempts=4, l0__retries=2, l0__retries__network=2,
                  l0__fallback__index=1),
    }
    assert [name for name, _ in events(session)] == ["l0.retry", "l0.retry", "l0.fallback"]
    assert events(session)[2][1] == {"l0.fallback.from": 0, "l0.fallback.to": 1,
                                     "error.type": "NETWORK_ERROR"}
    attempts = _attempts(otel)
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR] * 3 + [
        StatusCode.UNSET]
    assert [attrs(a)["gen_ai.request.model"] for a in attempts] == ["gpt-4o"] * 3 + [
        "gpt-4o-mini"]
    assert [attrs(a)["l0.fallback.index"] for a in attempts] == [0, 0, 0, 1]
    assert attrs(attempts[2])["l0.recovery"] == "fallback"
    assert otel.value("l0.fallbacks", l0__fallback__to=1, **REQUEST) == 1
    (point_attrs, _), = otel.points("gen_ai.client.operation.duration")
    assert point_attrs == {**REQUEST, "gen_ai.response.model": "gpt-4o-mini"}
    # time to first chunk: only the fallback's attempt got a first chunk, under its model
    (ttfc_attrs, ttfc), = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc_attrs == {**REQUEST, "gen_ai.request.model": "gpt-4o-mini"}
    assert ttfc.count == 1


async def test_stall_timeout_is_a_timeout_event_and_a_timed_out_attempt(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["a", "b"], stall_after=1), Script(["c"])),
                    timeout=l0.Timeout(initial_token=1.0, inter_token=0.05), retry=FAST_RETRY,
                    observers=[otel.observer()])
    assert await stream.read() == "c"
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.UNSET
    assert attrs(session)["l0.timeouts"] == 1
    assert [name for name, _ in events(session)] == ["l0.timeout", "l0.retry"]
    assert events(session)[0][1] == {"l0.timeout.type": "inter", "l0.attempt.number": 1}
    first, second = _attempts(otel)
    assert attrs(first)["error.type"] == "INTER_TOKEN_TIMEOUT"
    assert first.status.status_code is StatusCode.ERROR
    assert second.status.status_code is StatusCode.UNSET
    assert otel.value("l0.timeouts", l0__timeout__type="inter", **REQUEST) == 1
    assert otel.value("l0.retries", l0__retry__reason="INTER_TOKEN_TIMEOUT") == 1


async def test_abort_ends_every_span_with_an_error_status(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["a", "b", "c"], delay=0.01)),
                    observers=[otel.observer()])
    with pytest.raises(l0.L0Error) as raised:
        async for _ in stream:
            stream.abort()
    assert raised.value.code is l0.ErrorCode.STREAM_ABORTED
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.ERROR
    assert session.status.description == "STREAM_ABORTED"
    assert attrs(session)["error.type"] == "STREAM_ABORTED"
    assert attrs(session)["l0.outcome"] == "aborted"
    assert "gen_ai.response.model" not in attrs(session)
    (attempt,) = _attempts(otel)
    assert attempt.status.status_code is StatusCode.ERROR
    assert attrs(attempt)["error.type"] == "STREAM_ABORTED"
    (point_attrs, _), = otel.points("gen_ai.client.operation.duration")
    assert point_attrs == {**REQUEST, "error.type": "STREAM_ABORTED"}


async def test_fatal_error_is_the_session_status_and_error_type(otel: Otel) -> None:
    fatal = l0.L0Error("the request is malformed", l0.ErrorCode.BAD_REQUEST)
    stream = l0.run(stream=source(Script(["a"], raise_on_call=fatal)),
                    observers=[otel.observer()])
    with pytest.raises(l0.L0Error):
        await stream.read()
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.ERROR
    assert session.status.description == "BAD_REQUEST"
    assert attrs(session) == {"l0.session.id": stream.id, **REQUEST, "gen_ai.system": "openai",
                              "error.type": "BAD_REQUEST", **summary(l0__outcome="error")}
    (attempt,) = _attempts(otel)
    assert attrs(attempt)["l0.recovery"] == "halt"
    assert attempt.status.status_code is StatusCode.ERROR
    (point_attrs, _), = otel.points("gen_ai.client.operation.duration")
    assert point_attrs == {**REQUEST, "error.type": "BAD_REQUEST"}
    assert otel.points("gen_ai.client.operation.time_to_first_chunk") == []


class NoShouting:
    """Flags words of four or more capitals (an ``error``: the attempt is retried)."""

    name = "no-shouting"
    streaming = False

    def check_delta(self, delta: str, offset: int) -> None:
        return None

    def check_complete(self, content: str) -> list[l0.Violation]:
        return [l0.Violation(self.name, f"shouting: {word!r}", "error")
                for word in content.split() if len(word) >= 4 and word.isupper()]


async def test_guardrail_violation_is_counted_without_its_message(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["this is ", "VERY ", "loud"]), Script(["calm"])),
                    guardrails=[NoShouting()], retry=FAST_RETRY, observers=[otel.observer()])
    assert await stream.read() == "calm"
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.UNSET
    assert attrs(session)["l0.guardrail.violations"] == 1
    assert attrs(session)["l0.retries.model"] == 1
    assert events(session) == [
        ("l0.guardrail.violation", {"l0.guardrail.rule": "no-shouting",
                                    "l0.guardrail.severity": "error",
                                    "l0.attempt.number": 1}),
        ("l0.retry", events(session)[1][1]),
    ]
    first, _ = _attempts(otel)
    assert attrs(first)["error.type"] == "GUARDRAIL_VIOLATION"
    assert otel.value("l0.guardrail.violations", l0__guardrail__rule="no-shouting",
                      l0__guardrail__severity="error", **REQUEST) == 1
    everything = repr([(attrs(s), events(s)) for s in otel.spans()])
    assert "loud" not in everything and "shouting:" not in everything


class SaysAsAnAI:
    """Drift when the output starts talking about itself."""

    def check_delta(self, delta: str, offset: int) -> DriftResult | None:
        return DriftResult(["meta_commentary"], 0.9) if "as an AI" in delta else None


async def test_drift_is_flagged_on_the_session(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["Sure. ", "as an AI", " I can"])), drift=SaysAsAnAI,
                    drift_action="flag", check_intervals=l0.CheckIntervals(drift=1),
                    observers=[otel.observer()])
    assert await stream.read() == "Sure. as an AI I can"
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.UNSET
    assert attrs(session)["l0.drift.detected"] is True
    assert events(session) == [("l0.drift", {"l0.drift.types": ("meta_commentary",),
                                             "l0.drift.score": 0.9, "l0.attempt.number": 1})]
    assert otel.value("l0.drift.detections", **REQUEST) == 1


async def test_consumer_break_ends_the_spans_unset_as_stopped(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["a", "b", "c"], delay=0.01)),
                    observers=[otel.observer()])
    async for _ in stream:
        break
    await stream.aclose()
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.UNSET
    assert attrs(session)["l0.outcome"] == "stopped"
    assert "error.type" not in attrs(session)
    (attempt,) = _attempts(otel)
    assert attrs(attempt)["l0.outcome"] == "stopped"
    assert otel.value("gen_ai.client.operation.duration", **REQUEST) == 1


async def test_consumer_break_without_aclose_ends_the_spans(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["a", "b", "c"], delay=0.01)),
                    observers=[otel.observer()])
    async for _ in stream:
        break
    for _ in range(5):  # asyncio finalises the abandoned generator on the next loop turns
        await asyncio.sleep(0)
    assert attrs(otel.span("chat gpt-4o"))["l0.outcome"] == "stopped"


async def test_task_cancellation_ends_the_spans_as_cancelled(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    started = asyncio.Event()

    async def consume() -> None:
        with tracer.start_as_current_span("worker"):
            stream = l0.run(stream=source(Script(["a", "b"], stall_after=1)),
                            timeout=l0.Timeout(inter_token=30.0), observers=[otel.observer()])
            async for _ in stream:
                started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    session = otel.span("chat gpt-4o")
    assert session.status.status_code is StatusCode.ERROR
    assert session.status.description == "cancelled"
    assert attrs(session)["error.type"] == "cancelled"
    assert attrs(session)["l0.outcome"] == "cancelled"
    (attempt,) = _attempts(otel)
    assert attempt.status.status_code is StatusCode.ERROR
    assert attrs(attempt)["l0.outcome"] == "cancelled"
    assert parent_id(session) == span_id(otel.span("worker"))


async def test_cancellation_while_the_attempt_opens_detaches_the_context(otel: Otel) -> None:
    """Cancelled between STREAM_INIT and STREAM_READY (the attempt span is current then)."""
    tracer = otel.tracer_provider.get_tracer("app")
    opened = asyncio.Event()

    async def consume() -> None:
        with tracer.start_as_current_span("worker") as worker:
            stream = l0.run(stream=source(Script(["a"], first_delay=5.0)),
                            timeout=l0.Timeout(initial_token=30.0),
                            on_event=lambda e: e.type.value == "STREAM_INIT" and opened.set(),
                            observers=[otel.observer()])
            try:
                await stream.read()
            finally:
                assert trace.get_current_span() is worker

    task = asyncio.create_task(consume())
    await asyncio.wait_for(opened.wait(), 5)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attrs(otel.span("chat gpt-4o"))["l0.outcome"] == "cancelled"


async def test_the_consumer_never_runs_inside_an_l0_span(otel: Otel) -> None:
    """Between tokens the caller's context is the current one, not the session's."""
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("caller") as caller:
        stream = l0.run(stream=source(Script(["a", "b"], fail_after=1), Script(["a", "b"])),
                        retry=FAST_RETRY, observers=[otel.observer()])
        seen = [trace.get_current_span() async for _ in stream]
    assert seen and all(span is caller for span in seen)


async def test_no_work_per_token(otel: Otel) -> None:
    """The observer sees the same events for 10 tokens as for 2 000."""
    calls: list[int] = []
    for n in (10, 2000):
        observer = otel.observer()
        seen = 0
        on_event = observer.on_event

        def counting(event: Any, on_event: Any = on_event) -> None:
            nonlocal seen
            seen += 1
            on_event(event)

        observer.on_event = counting  # type: ignore[method-assign]
        stream = l0.run(stream=source(Script(["t"] * n)), observers=[observer])
        assert len(await stream.read()) == n
        calls.append(seen)
    assert calls[0] == calls[1]
    assert calls[0] < 20


async def test_checkpoints_are_counted_and_a_resume_is_an_event(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["one ", "two ", "three "], fail_after=2),
                                  Script(["three ", "four"])),
                    continue_from_last_good_token=True,
                    check_intervals=l0.CheckIntervals(checkpoint=1), retry=FAST_RETRY,
                    observers=[otel.observer()])
    assert await stream.read() == "one two three four"
    session = otel.span("chat gpt-4o")
    assert attrs(session)["l0.checkpoints"] == 5  # counted, never one event each
    assert attrs(session)["l0.resumed"] is True
    assert [name for name, _ in events(session)] == ["l0.retry", "l0.resume"]
    assert events(session)[1][1] == {"l0.attempt.number": 2, "l0.resume.token_count": 2}
    recorded = repr([(attrs(s), events(s)) for s in otel.spans()])
    assert "one two" not in recorded  # the checkpoint's text is content


async def test_an_undescribed_fallback_leaves_the_response_model_unknown(otel: Otel) -> None:
    stream = l0.run(stream=source(Script(["x"], raise_on_call=l0.L0Error(
                        "bad", l0.ErrorCode.BAD_REQUEST))),
                    fallbacks=[source(Script(["ok"]), described=None)],
                    observers=[otel.observer()])
    assert await stream.read() == "ok"
    session = otel.span("chat gpt-4o")
    assert "gen_ai.response.model" not in attrs(session)
    assert attrs(session)["gen_ai.request.model"] == "gpt-4o"
    _, second = _attempts(otel)
    assert attrs(second) == {"l0.attempt.number": 2, "l0.fallback.index": 1}

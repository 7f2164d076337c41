"""The canonical lifecycle: four scenarios, the invariants, and derived callbacks.

The scenario data is written here (ordered subsequences of observability events with
field assertions, and the expected callback calls).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

import l0_core as l0
from l0_core.testing import Script, ScriptedSource
from tests.core.helpers import Recorder, consume

pytestmark = pytest.mark.usefixtures("instant")

CALLBACKS = ("on_start", "on_complete", "on_error", "on_retry", "on_fallback")


class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def kwargs(self) -> dict[str, Any]:
        def make(name: str) -> Any:
            return lambda *args: self.calls.append((name, args))

        return {name: make(name) for name in CALLBACKS}

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


def bad_content_rule() -> l0.FunctionRule:
    def check(content: str) -> list[l0.Violation]:
        if "bad" in content:
            return [l0.Violation("no-bad", "Guardrail violation")]
        return []

    return l0.FunctionRule("no-bad", check_complete=check)


SCENARIOS: dict[str, dict[str, Any]] = {
    "normal-success": {
        "primary": [Script(["Hello", " ", "World"])],
        "fallbacks": [],
        "retry": l0.Retry(attempts=1),
        "guardrails": None,
        "context": {"requestId": "test-123"},
        "expected": [
            ("SESSION_START", {"attempt": 1, "isRetry": False, "isFallback": False}),
            ("COMPLETE", {"tokenCount": 3, "contentLength": 11}),
        ],
        "content": "Hello World",
        "on_start": [(1, False, False)],
        "on_retry": [],
        "on_fallback": [],
    },
    "retry-on-guardrail": {
        "primary": [Script(["bad-content"]), Script(["good-content"])],
        "fallbacks": [],
        "retry": l0.Retry(attempts=2),
        "guardrails": [bad_content_rule],
        "context": {"requestId": "retry-123"},
        "expected": [
            ("SESSION_START", {"attempt": 1, "isRetry": False, "isFallback": False}),
            ("GUARDRAIL_RULE_RESULT", {"passed": False}),
            ("ERROR", {"recoveryStrategy": "retry", "errorCode": "GUARDRAIL_VIOLATION"}),
            ("RETRY_ATTEMPT", {"attempt": 1}),
            ("ATTEMPT_START", {"attempt": 2, "isRetry": True, "isFallback": False}),
            ("COMPLETE", {"tokenCount": 1, "contentLength": 12}),
        ],
        "content": "good-content",
        "on_start": [(1, False, False), (2, True, False)],
        "on_retry": [(2, "guardrail no-bad: Guardrail violation")],
        "on_fallback": [],
    },
    "fallback-after-retries-exhausted": {
        "primary": [
            Script(["fail-1"], fail_after=1, error=RuntimeError("Stream error")),
            Script(["fail-2"], fail_after=1, error=RuntimeError("Stream error")),
        ],
        "fallbacks": [[Script(["fallback-success"])]],
        "retry": l0.Retry(attempts=1),
        "guardrails": None,
        "context": {"requestId": "fallback-456"},
        "expected": [
            ("SESSION_START", {"attempt": 1, "isRetry": False, "isFallback": False}),
            ("ERROR", {"recoveryStrategy": "retry"}),
            ("RETRY_ATTEMPT", {"attempt": 1}),
            ("ATTEMPT_START", {"attempt": 2, "isRetry": True}),
            ("ERROR", {"recoveryStrategy": "fallback"}),
            ("RETRY_GIVE_UP", {"reason": "Retries exhausted"}),
            ("FALLBACK_START", {"fromIndex": 0, "toIndex": 1}),
            ("FALLBACK_END", {"success": True, "finalIndex": 1}),
            ("COMPLETE", {"tokenCount": 1, "contentLength": 16}),
        ],
        "content": "fallback-success",
        "on_start": [(1, False, False), (2, True, False), (1, False, True)],
        "on_retry": [(2, "RuntimeError: Stream error")],
        "on_fallback": [(0, "Retries exhausted")],
    },
    "error-context-propagation": {
        "primary": [Script([], fail_after=0, error=ConnectionError("Network failure"))],
        "fallbacks": [[Script(["recovered"])]],
        "retry": l0.Retry.none(),
        "guardrails": None,
        "context": {"requestId": "error-ctx-404", "userId": "user-xyz",
                    "nested": {"traceId": "trace-abc"}},
        "expected": [
            ("SESSION_START", {}),
            ("ERROR", {"recoveryStrategy": "fallback", "errorCode": "NETWORK_ERROR"}),
            ("FALLBACK_START", {"fromIndex": 0, "toIndex": 1}),
            ("COMPLETE", {"tokenCount": 1}),
        ],
        "content": "recovered",
        "on_start": [(1, False, False), (1, False, True)],
        "on_retry": [],
        "on_fallback": [(0, "NETWORK_ERROR: Retries exhausted")],
    },
}


async def run_scenario(name: str) -> tuple[Recorder, Calls, l0.Stream, dict[str, Any]]:
    sc = SCENARIOS[name]
    rec, calls = Recorder(), Calls()
    context = sc["context"]
    stream = l0.run(
        stream=ScriptedSource(sc["primary"]),
        fallbacks=[ScriptedSource(f) for f in sc["fallbacks"]],
        retry=sc["retry"],
        guardrails=sc["guardrails"],
        context=context,
        on_event=rec,
        **calls.kwargs(),
    )
    got = await consume(stream)
    assert got.error is None, got.error
    assert got.text == sc["content"]
    return rec, calls, stream, sc


def assert_subsequence(rec: Recorder, expected: list[tuple[str, dict[str, Any]]]) -> None:
    position = 0
    for type_name, fields in expected:
        while position < len(rec.events) and rec.events[position].type.value != type_name:
            position += 1
        assert position < len(rec.events), f"{type_name} missing after position; got {rec.types}"
        event = rec.events[position]
        for key, value in fields.items():
            assert event[key] == value, (type_name, key, event.meta)
        position += 1


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario_events_and_callbacks(name: str) -> None:
    rec, calls, stream, sc = await run_scenario(name)
    if name == "error-context-propagation":
        sc = dict(sc, on_fallback=[(0, "NETWORK_ERROR and no retries left")])
    assert_subsequence(rec, sc["expected"])
    assert stream.state.content == sc["content"]
    assert calls.of("on_start") == sc["on_start"]
    assert calls.of("on_retry") == sc["on_retry"]
    assert [args[0] for args in calls.of("on_fallback")] == [a[0] for a in sc["on_fallback"]]
    assert [args[0].content for args in calls.of("on_complete")] == [sc["content"]]


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_invariants(name: str) -> None:
    rec, _, stream, sc = await run_scenario(name)
    types = rec.types
    assert types.count("SESSION_START") == 1
    assert types[-2:] == ["SESSION_SUMMARY", "SESSION_END"]
    assert types[-3] == "COMPLETE"
    for i, t in enumerate(types):
        if t == "ATTEMPT_START":
            assert rec.events[i]["attempt"] >= 2 and rec.events[i]["isRetry"]
            assert "RETRY_ATTEMPT" in types[:i]
    # a fallback is never announced as an attempt
    for i, t in enumerate(types):
        if t == "FALLBACK_START":
            assert types[i + 1] != "ATTEMPT_START"
    stamps = [e.ts for e in rec.events]
    assert stamps == sorted(stamps)
    ids = {e.stream_id for e in rec.events}
    assert ids == {stream.id}
    assert uuid.UUID(stream.id).version == 7
    for event in rec.events:
        assert event.context == sc["context"]


async def test_context_is_deep_copied_and_read_only() -> None:
    rec = Recorder()
    context: dict[str, Any] = {"requestId": "r", "nested": {"traceId": "t"}, "tags": ["a"]}
    stream = l0.run(stream=ScriptedSource([Script(["x"])]), context=context, on_event=rec)
    context["nested"]["traceId"] = "changed"
    await stream.read()
    first = rec.events[0]
    assert first.context["nested"]["traceId"] == "t"
    assert all(e.context is first.context for e in rec.events)
    with pytest.raises(TypeError):
        first.context["requestId"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        first.context["nested"]["traceId"] = "x"  # type: ignore[index]
    assert first.to_dict()["context"] == {"requestId": "r", "nested": {"traceId": "t"},
                                          "tags": ["a"]}


async def test_async_callbacks_run_and_never_block() -> None:
    done = asyncio.Event()
    tokens: list[str] = []

    async def on_token(text: str) -> None:
        await asyncio.sleep(0.01)
        tokens.append(text)

    async def on_complete(state: l0.State) -> None:
        done.set()

    stream = l0.run(stream=ScriptedSource([Script(["a", "b"])]), on_token=on_token,
                    on_complete=on_complete)
    assert await stream.read() == "ab"
    await asyncio.wait_for(done.wait(), 1)
    await asyncio.sleep(0.05)
    assert tokens == ["a", "b"]


async def test_raising_callback_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.WARNING, logger="l0"):
        stream = l0.run(stream=ScriptedSource([Script(["ok"])]), on_start=boom, on_token=boom,
                        on_complete=boom, on_event=boom)
        assert await stream.read() == "ok"
    assert "callback bug" in caplog.text


async def test_stream_events_callback_sees_every_event() -> None:
    kinds: list[str] = []
    source = ScriptedSource([Script(["a"], fail_after=1), Script(["b"])])
    stream = l0.run(stream=source, on_stream_event=lambda e: kinds.append(e.type.value))
    assert await stream.read() == "b"
    assert kinds == ["token", "error", "discard", "token", "complete"]


async def test_every_callback_can_fire() -> None:
    fired: dict[str, list[tuple[Any, ...]]] = {}

    def make(name: str) -> Any:
        return lambda *args: fired.setdefault(name, []).append(args)

    names = ("on_start", "on_complete", "on_error", "on_stream_event", "on_violation",
             "on_retry", "on_fallback", "on_resume", "on_checkpoint", "on_timeout",
             "on_drift", "on_tool_call", "on_token")

    class Drifty:
        def check_delta(self, delta: str, offset: int) -> l0.DriftResult | None:
            return l0.DriftResult(["repetition"], 0.8) if "loop" in delta else None

    warn = l0.FunctionRule("warn", check_delta=lambda d, o: [l0.Violation("warn", "w", "warning")]
                           if "w" in d else None)
    primary = ScriptedSource([Script(["x", "y"], stall_after=1)])
    backup = ScriptedSource([Script(["w", "loop", "z"]), Script(["w", "ok"])])
    items = [l0.ToolCall("c", "f", {})]

    async def tools() -> Any:
        for i in items:
            yield i

    stream = l0.run(stream=primary, fallbacks=[backup, tools], retry=l0.Retry(network_attempts=0,
                    attempts=1), timeout=l0.Timeout(inter_token=0.05), guardrails=[warn],
                    drift=Drifty, continue_from_last_good_token=True,
                    check_intervals=l0.CheckIntervals(guardrails=1, checkpoint=1, drift=1),
                    **{n: make(n) for n in names})
    # "x" survives the stall (continuation), "loop" is drift: dropped; "w" then repeats
    # (one character is below the minimum overlap that is deduplicated)
    assert await stream.read() == "xwwok"
    assert set(fired) >= {"on_start", "on_complete", "on_error", "on_stream_event",
                          "on_violation", "on_retry", "on_fallback", "on_resume",
                          "on_checkpoint", "on_timeout", "on_drift", "on_token"}
    stream2 = l0.run(stream=tools, on_tool_call=make("on_tool_call"),
                     on_abort=make("on_abort"))
    await stream2.read()
    assert fired["on_tool_call"] == [("f", "c", {})]
    assert [kind for kind, _ in fired["on_timeout"]] == ["inter"]
    assert 0.05 <= fired["on_timeout"][0][1] < 0.1  # the time that passed, not the limit
    assert fired["on_drift"] == [(["repetition"], 0.8)]


async def test_observers_by_name_class_and_object() -> None:
    class Counter:
        name = "counter"

        def __init__(self) -> None:
            self.n = 0

        def on_event(self, event: l0.ObservabilityEvent) -> None:
            self.n += 1

    instance = Counter()
    stream = l0.run(stream=ScriptedSource([Script(["x"])]),
                    observers=["logging", Counter, instance])
    assert await stream.read() == "x"
    assert instance.n > 3
    with pytest.raises(l0.ConfigError, match="unknown observer"):
        l0.run(stream=ScriptedSource([Script(["x"])]), observers=["nope"])

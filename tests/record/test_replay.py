"""Record, then replay: the same events, callbacks, observers, state, and final error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.record import open_store
from l0_core.testing import Script, ScriptedSource
from tests.core.test_lifecycle import SCENARIOS
from tests.record.support import assert_same, record_and_replay

pytestmark = pytest.mark.usefixtures("instant")


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    return f"sqlite:///{tmp_path}/events.db"


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_every_lifecycle_scenario_replays_identically(name: str, url: str) -> None:
    sc = SCENARIOS[name]
    live, again, _ = await record_and_replay(
        url, stream=ScriptedSource(sc["primary"]),
        fallbacks=[ScriptedSource(f) for f in sc["fallbacks"]], retry=sc["retry"],
        guardrails=sc["guardrails"], context=sc["context"])
    assert live.raised is None and live.state[0] == sc["content"]
    assert_same(live, again)
    assert len(again.obs) > 5 and again.obs[0]["context"] == sc["context"]


async def tool_and_data() -> AsyncIterator[Any]:
    yield l0.Token("Calling")
    yield l0.ToolCall("call_1", "lookup", {"q": "weather", "n": 2})
    yield l0.Data({"image": "abc"})
    yield l0.Progress({"pct": 50})
    yield l0.Message({"note": "hi"}, role="system")
    yield l0.Token(" done")


MORE: dict[str, dict[str, Any]] = {
    "continuation with a repeated overlap": {
        "stream": ScriptedSource([Script(["Once", " upon", " a"], fail_after=3),
                                  Script([" a time", " there"])]),
        "continue_from_last_good_token": True,
        "check_intervals": l0.CheckIntervals(checkpoint=1)},
    "exhausted: the final error is raised again": {
        "stream": ScriptedSource([Script(["x"], fail_after=1)] * 3),
        "retry": l0.Retry(network_attempts=2)},
    "a fatal guardrail halts": {
        "stream": ScriptedSource([Script(["{\"a\": ", "1}", " trailing"])]),
        "guardrails": ["strict_json"], "check_intervals": l0.CheckIntervals(guardrails=1)},
    "drift detected, flagged": {
        "stream": ScriptedSource([Script(["As an AI language model, I cannot"] * 4)]),
        "drift": True, "drift_action": "flag"},
    "tool calls, data, progress, messages": {"stream": tool_and_data, "adapter": "events"},
    "zero output, then text": {"stream": ScriptedSource([Script([]), Script(["late"])])},
}


@pytest.mark.parametrize("name", list(MORE))
async def test_more_sessions_replay_identically(name: str, url: str) -> None:
    live, again, _ = await record_and_replay(url, **MORE[name])
    assert_same(live, again)
    assert live.events  # the session did something worth comparing


async def test_an_aborted_session_replays_its_abort(url: str) -> None:
    async def slow() -> AsyncIterator[str]:
        yield "one"
        await asyncio.sleep(10)
        yield "two"

    stream = l0.run(stream=slow, record=url)
    seen = []
    with pytest.raises(l0.AbortedError):
        async for event in stream:
            seen.append(event.text)
            stream.abort()
    await stream.recording.wait()
    replayed = l0.replay(stream.id, store=url)
    got: list[str | None] = []
    with pytest.raises(l0.AbortedError):
        async for event in replayed:
            got.append(event.text)  # noqa: PERF401 (what came before the error)
    assert got == seen == ["one"]
    assert replayed.state.aborted and not replayed.state.completed
    info = await open_store(url).info(stream.id)
    assert info is not None and info.meta["outcome"] == "aborted"


async def test_a_consumer_that_breaks_off_replays_what_it_received(url: str) -> None:
    stream = l0.run(stream=ScriptedSource([Script(["a", "b", "c", "d"])]), record=url)
    async with stream:
        async for event in stream:
            if event.text == "b":
                break
    await stream.recording.wait()
    replayed = [e.text async for e in l0.replay(stream.id, store=url)]
    assert replayed == ["a", "b"]
    info = await open_store(url).info(stream.id)
    assert info is not None and info.meta["outcome"] == "closed"


async def test_speed_one_keeps_the_timing_and_speed_zero_does_not(url: str) -> None:
    stream = l0.run(stream=ScriptedSource([Script(["a", "b", "c"], delay=0.08)]), record=url)
    assert await stream.read() == "abc"
    await stream.recording.wait()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await l0.replay(stream.id, store=url).read() == "abc"
    fast = loop.time() - t0
    t0 = loop.time()
    assert await l0.replay(stream.id, store=url, speed=1).read() == "abc"
    real = loop.time() - t0
    t0 = loop.time()
    assert await l0.replay(stream.id, store=url, speed=4).read() == "abc"
    quick = loop.time() - t0
    # the recorded gaps are 0.24 s in all: at speed 1 they are waited out, at speed 4 a
    # quarter of them, at speed 0 not at all (orders, not tight bounds: the machine is shared)
    assert real >= 0.2 and 0.05 <= quick < real and fast < real


async def test_new_guardrails_on_old_traffic_report_what_they_would_have_done(url: str) -> None:
    stream = l0.run(stream=ScriptedSource([Script(["Sure! ", "As an AI language model, ",
                                                   "I cannot help", "{\"broken\": "])]),
                    record=url, detect_zero_tokens=False)
    text = await stream.read()
    await stream.recording.wait()
    replayed = l0.replay(stream.id, store=url, guardrails=["json", "pattern"], drift=True)
    assert await replayed.read() == text  # the replay itself is unchanged
    report = replayed.report
    assert not report.passed and report.attempts_checked == 1
    rules = {f.rule for f in report.findings}
    assert "pattern" in rules and "drift" in rules
    assert all(f.attempt == 1 and f.action in ("retry", "halt", "warn") for f in report.findings)
    clean = l0.replay(stream.id, store=url, guardrails=["zero_output"])
    await clean.read()
    assert clean.report.passed and clean.report.findings == []


async def test_record_true_uses_the_configured_store(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l0.toml").write_text('store = "sqlite:///.l0/events.db"\n')
    stream = l0.run(stream=ScriptedSource([Script(["configured"])]), record=True)
    assert await stream.read() == "configured"
    await stream.recording.wait()
    assert stream.recording.store.url == "sqlite:///.l0/events.db"
    assert await l0.replay(stream.id).read() == "configured"  # the configured store too
    await stream.recording.store.close()


async def test_record_true_without_a_store_is_a_config_error(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(l0.ConfigError, match="none is configured"):
        l0.run(stream=ScriptedSource([Script(["x"])]), record=True)
    with pytest.raises(l0.ConfigError, match="record must be True, a store URL"):
        l0.run(stream=ScriptedSource([Script(["x"])]), record=42)
    with pytest.raises(l0.ConfigError, match="no installed store handles nope://"):
        l0.run(stream=ScriptedSource([Script(["x"])]), record="nope://x")
    with pytest.raises(l0.ConfigError, match="speed"):
        l0.replay("x", store="memory://", speed=-1)
    with pytest.raises(l0.ConfigError, match="on_tokn"):
        l0.replay("x", store="memory://", on_tokn=print)


async def test_record_text_false_keeps_lengths_and_hashes_only(url: str) -> None:
    stream = l0.run(stream=ScriptedSource([Script(["secret", " words"], fail_after=1),
                                           Script(["secret words"])]),
                    record=url, record_text=False, context={"user": "u1"})
    assert await stream.read() == "secret words"
    await stream.recording.wait()
    records = await open_store(url).read(stream.id)
    dumped = repr([r.data for r in records])
    assert "secret" not in dumped
    tokens = [r.data for r in records if r.type == "token"]
    assert tokens[-1]["len"] == len("secret words") and len(tokens[-1]["sha256"]) == 64
    assert records[0].data["recordText"] is False
    assert records[0].data["context"] == {"user": {"len": 2, "sha256": records[0].data[
        "context"]["user"]["sha256"]}}
    with pytest.raises(l0.RecordingError, match="record_text=False"):
        await l0.replay(stream.id, store=url).read()


async def test_replaying_an_unknown_session_is_a_recording_error(url: str) -> None:
    open_store(url)
    with pytest.raises(l0.RecordingError, match="no recorded session"):
        await l0.replay("no-such-session", store=url).read()


async def test_recording_costs_nothing_when_off() -> None:
    stream = l0.run(stream=ScriptedSource([Script(["a"])]))
    assert stream.recording is None
    session = stream._session
    assert session.recorder is None and session.notify is None and not session.listeners


async def test_a_running_session_is_stored_as_it_goes(url: str) -> None:
    async def slow() -> AsyncIterator[str]:
        for piece in ("one", " two", " three"):
            yield piece
            await asyncio.sleep(0.4)

    stream = l0.run(stream=slow, record=url)
    store = open_store(url)
    seen = []
    async for event in stream:
        if event.is_token and event.text == " two":
            deadline = asyncio.get_running_loop().time() + 5.0
            while seen != ["one", " two"] and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)  # the writer's time bound is 0.5 s
                records = await store.read(stream.id)
                seen = [r.data for r in records if r.type == "token"]
            info = await store.info(stream.id)
            assert info is not None and info.meta["outcome"] == "running"
    assert seen == ["one", " two"]  # stored while the session was still running
    await stream.recording.wait()
    info = await store.info(stream.id)
    assert info is not None and info.meta["outcome"] == "completed"


async def test_observers_see_the_replay_and_abort_stops_it(url: str) -> None:
    stream = l0.run(stream=ScriptedSource([Script(["a", "b", "c"])]), record=url)
    assert await stream.read() == "abc"
    await stream.recording.wait()

    class Seen:
        def __init__(self) -> None:
            self.types: list[str] = []

        def on_event(self, event: l0.ObservabilityEvent) -> None:
            self.types.append(event.type.value)

    seen = Seen()
    assert await l0.replay(stream.id, store=url, observers=[seen]).read() == "abc"
    assert seen.types[0] == "SESSION_START" and seen.types[-1] == "SESSION_END"
    assert "TOKEN" not in seen.types  # observers never get per-token events, as live

    replayed = l0.replay(stream.id, store=url)
    got = []
    with pytest.raises(l0.AbortedError):
        async for event in replayed:
            if event.is_token:
                got.append(event.text)
                replayed.abort()
    assert got == ["a"]

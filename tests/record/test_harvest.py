"""Recording without per-token work: tokens are harvested from ``state.parts``.

What reached the consumer is recorded, in its place among the other events;
what entered ``parts`` but never reached the consumer (an adapter item whose
later event failed, a token a check stopped) is not.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.record import Record, open_store
from l0_core.record.recorder import RUN
from l0_core.runtime.adapters import Finish
from l0_core.testing import Script, ScriptedSource
from tests.record.support import Seen, assert_same, record_and_replay

pytestmark = pytest.mark.usefixtures("instant")


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    return f"sqlite:///{tmp_path}/events.db"


class Boom(Exception):
    """An adapter's bug, raised in the middle of one item's events."""


class ListAdapter:
    """Items are lists of what ``feed`` returns: str, events, or ``Boom`` (raised there,
    after the earlier entries of the same item were produced)."""

    name = "lists"

    def detect(self, item: Any) -> bool:
        return isinstance(item, list)

    def open(self, options: Mapping[str, Any] | None = None) -> Any:
        class Session:
            def feed(self, item: list[Any]) -> Any:
                def events() -> Any:  # a generator: its later entries fail late
                    for entry in item:
                        if entry is Boom:
                            raise l0.L0Error("the chunk broke", l0.ErrorCode.NETWORK_ERROR)
                        yield l0.Token(entry) if isinstance(entry, str) else entry

                return events()

            def finish(self) -> Finish:
                return Finish("tool_calls")

        return Session()


def lists(*attempts: list[list[Any]]) -> Any:
    calls = iter(attempts)

    def factory() -> AsyncIterator[list[Any]]:
        items = next(calls)

        async def gen() -> AsyncIterator[list[Any]]:
            for item in items:
                yield item

        return gen()

    return factory


def _heard_but_not_delivered(live: Seen, text: str) -> None:
    """Live, the per-token callbacks hear each token of an item as it enters the text,
    before the item's later failure; the consumer never receives it, and the recording
    (so the replay) holds only what the consumer received. Forget it on the live side."""
    token = next(o for o in live.obs if o["type"] == "TOKEN" and o["text"] == text)
    live.obs.remove(token)
    live.calls.remove(("on_token", [text]))


async def _records(url: str, stream_id: str) -> list[Record]:
    return await open_store(url).read(stream_id)


async def test_only_recording_keeps_the_plain_loop_and_no_per_token_call(url: str) -> None:
    stream = l0.run(stream=ScriptedSource([Script(["a", "b", "c"])]), record=url)
    session = stream._session
    assert session.notify is None and not session.per_token  # the plain token loop
    assert await stream.read() == "abc"
    await stream.recording.wait()
    tokens = [r.data for r in await _records(url, stream.id) if r.type == "token"]
    assert tokens == ["a", "b", "c"]
    timed = l0.run(stream=ScriptedSource([Script(["a"])]), record=url, record_timing="token")
    assert timed._session.notify is not None  # the opt-in: each token's own time


async def test_a_chunk_whose_later_event_fails_is_not_recorded(url: str) -> None:
    """An adapter item gives a token and a tool call, then fails: the consumer receives
    none of it, so the recording holds none of it (neither text nor tool call)."""
    call = l0.ToolCall("call_1", "lookup", {"q": 1})
    source = lists([["Hel", "lo"], [" wor", call, Boom]], [["Hello", " again"], [call]])
    live, again, stream = await record_and_replay(
        url, stream=source, adapter=ListAdapter(), retry=l0.Retry(network_attempts=2))
    assert [e for e in live.events if e[0] in ("token", "tool_call")] == [
        ("token", "Hel"), ("token", "lo"),
        ("token", "Hello"), ("token", " again"), ("tool_call", "call_1", "lookup", {"q": 1}, 0)]
    # live, the per-token callbacks heard " wor" before its item failed (they run as each
    # token enters the text); the replay holds only what the consumer received
    _heard_but_not_delivered(live, " wor")
    assert_same(live, again)
    records = await _records(url, stream.id)
    assert [r.data for r in records if r.type == "token"] == ["Hel", "lo", "Hello", " again"]
    assert [r.type for r in records].count("tool_call") == 1
    kinds = [r.type for r in records if r.type.islower()]
    assert kinds == ["session", "token", "token", "error", "discard", "token", "token",
                     "tool_call", "complete"]
    assert stream.state.tool_calls == [call]  # the failed item's call is not kept either
    assert again.state == live.state


async def test_a_token_a_check_stops_inside_a_chunk_is_not_recorded(url: str) -> None:
    """A guardrail stops the second token of an item: the item's first token was never
    delivered either, and neither is recorded."""
    source = lists([["ok "], ["fine ", "FORBIDDEN"]], [["ok ", "clean"]])
    rule = l0.CustomPatternRule([r"FORBIDDEN"], severity="error")
    live, again, stream = await record_and_replay(
        url, stream=source, adapter=ListAdapter(), guardrails=[rule],
        check_intervals=l0.CheckIntervals(guardrails=1), retry=l0.Retry(attempts=2))
    assert [e[1] for e in live.events if e[0] == "token"] == ["ok ", "ok ", "clean"]
    _heard_but_not_delivered(live, "fine ")
    assert_same(live, again)
    records = await _records(url, stream.id)
    assert [r.data for r in records if r.type == "token"] == ["ok ", "ok ", "clean"]


async def test_a_failed_session_replays_its_last_finish_reason(url: str) -> None:
    source = ScriptedSource([Script([]), Script([])])  # zero output twice: it fails
    live, again, stream = await record_and_replay(url, stream=source,
                                                  retry=l0.Retry(attempts=2))
    assert live.raised is not None and stream.state.finish_reason == "stop"
    assert again.state == live.state  # (the state tuple holds the finish reason)


async def test_a_long_session_without_a_pause_is_recorded_whole(url: str) -> None:
    n = 2 * RUN + 123  # more than one harvest run, and no await for the timer
    words = [f" w{i}" for i in range(n)]

    async def fast() -> AsyncIterator[str]:
        for w in words:
            yield w

    stream = l0.run(stream=fast, record=url)
    assert await stream.read() == "".join(words)
    await stream.recording.wait()
    records = await _records(url, stream.id)
    assert [r.seq for r in records] == list(range(len(records)))
    assert [r.data for r in records if r.type == "token"] == words
    assert stream.recording.dropped == 0


async def test_token_timing_records_each_token_its_own_time(url: str) -> None:
    async def paced() -> AsyncIterator[str]:
        for w in ("a", "b", "c", "d"):
            yield w
            await asyncio.sleep(0.03)

    seen = {}
    for timing in ("tick", "token"):
        live, again, stream = await record_and_replay(url, stream=paced,
                                                      record_timing=timing)
        assert_same(live, again)
        seen[timing] = [r.ts for r in await _records(url, stream.id) if r.type == "token"]
    # the ticks: one time for the run harvested at the end; each token its own otherwise
    assert len(set(seen["tick"])) == 1
    assert len(set(seen["token"])) == 4 and seen["token"] == sorted(seen["token"])


async def test_replay_at_speed_one_spreads_a_run_over_its_time() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    store = open_store(url)
    header = {"format": 1, "streamId": "s", "startedAt": 0.0, "recordText": True}
    await store.append("s", [
        Record(0, 1000.0, "session", header),
        Record(1, 1000.0, "SESSION_START", {"attempt": 1}),
        Record(2, 1300.0, "token", "a"), Record(3, 1300.0, "token", "b"),
        Record(4, 1300.0, "token", "c"),
        Record(5, 1300.0, "complete", {"text": "abc", "usage": None, "finishReason": "stop"}),
        Record(6, 1300.0, "SESSION_END", {"completed": True}),
    ], {"outcome": "completed"})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    at = [loop.time() - t0 async for e in l0.replay("s", store=url, speed=1) if e.is_token]
    # 0.3 s for three tokens: about 0.1 s apart, not all three at 0.3 s (orders, not
    # tight bounds: the machine is shared)
    assert len(at) == 3
    assert at[0] < at[1] < at[2] and at[2] >= 0.25
    assert at[0] <= at[2] - 0.12


def test_record_timing_is_checked() -> None:
    with pytest.raises(l0.ConfigError, match="record_timing"):
        l0.run(stream=ScriptedSource([Script(["a"])]), record="memory://x",
               record_timing="each")
    with pytest.raises(l0.ConfigError, match="record_timing"):
        l0.run(stream=ScriptedSource([Script(["a"])]), record_timing="each")


async def test_observer_and_token_events_keep_their_order_with_guardrails(url: str) -> None:
    """With a check every token, each tick's events come before its token, as live."""
    live, again, _ = await record_and_replay(
        url, stream=ScriptedSource([Script(["a", "b", "c", "d"])]),
        guardrails=["repetition"], check_intervals=l0.CheckIntervals(guardrails=1, checkpoint=1),
        continue_from_last_good_token=True)
    assert_same(live, again)
    kinds = [o["type"] for o in live.obs]
    assert "CHECKPOINT_SAVED" in kinds and kinds.count("TOKEN") == 4


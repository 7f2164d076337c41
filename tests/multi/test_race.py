"""l0.race and l0.hedge over the real openai SDK and the fault-injecting server."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import pytest

import l0_core as l0
from l0_core.events import Complete, Token, ToolCall
from l0_core.multi import LatencyHistory, LiveStream, RaceResult
from l0_core.testing.openai_server import OpenAIServer, Turn

from .support import FAST, ask, by_model, client_for, eventually, settled, words

SLOW = "The slow model took its time."
MEDIUM = "The medium model was almost there."
QUICK = "The fast model answered first."
T = l0.ObservabilityEventType


def _models(**overrides: Turn) -> dict[str, Turn]:
    turns = {
        "slow": Turn(tokens=words(SLOW), delay=0.15),
        "medium": Turn(tokens=words(MEDIUM), delay=0.06),
        "fast": Turn(tokens=words(QUICK), delay=0.005),
    }
    turns.update(overrides)
    return turns


async def test_the_fastest_model_wins_even_when_listed_last() -> None:
    seen: list[l0.ObservabilityEvent] = []
    async with OpenAIServer(turns=by_model(_models())) as server:
        client = client_for(server)
        started = time.monotonic()
        result = await l0.race([ask(client, "slow"), ask(client, "medium"), ask(client, "fast")],
                               timeout=FAST, on_event=seen.append)
        elapsed = time.monotonic() - started
        assert isinstance(result, RaceResult)
        assert result.winner == 2
        assert result.text == QUICK == result.state.content
        assert result.error is None
        assert [r.status for r in result.results] == ["aborted", "aborted", "succeeded"]
        assert {r.reason for r in result.results[:2]} == {"lost the race to task 2"}
        assert all(r.error is not None and r.error.code is l0.ErrorCode.STREAM_ABORTED
                   for r in result.results[:2])
        # the losers were stopped before race returned, not read to their end
        assert elapsed < 0.6
        assert all(not r.state.completed and r.state.aborted for r in result.results[:2]
                   if r.state is not None)
        # the server saw both losers' connections go away mid-response
        assert await server.wait_idle()
        assert server.abandoned == 2
        assert await eventually(lambda: server.closed_connections >= 2)
        assert len(server.completion_requests) == 3
        await settled(server, client)
    types = [e.type for e in seen if e.stream_id == result.id]
    assert types == [T.RACE_START, T.RACE_WINNER, T.RACE_END]
    children = [e for e in seen if e.type is T.SESSION_START]
    assert sorted(e.context["taskIndex"] for e in children) == [0, 1, 2]
    assert {e.context["parentId"] for e in children} == {result.id}
    ends = [e for e in seen if e.type is T.SESSION_END]
    assert [e["completed"] for e in ends].count(True) == 1


async def test_when_the_leader_fails_the_race_goes_on_among_the_rest() -> None:
    turns = _models(fast=Turn(tokens=words(QUICK), delay=0.005, cut_after=2))
    async with OpenAIServer(turns=by_model(turns)) as server:
        client = client_for(server)
        result = await l0.race([ask(client, "slow"), ask(client, "medium"), ask(client, "fast")],
                               timeout=FAST, retry=l0.Retry.none())
        assert isinstance(result, RaceResult)
        assert result.winner == 1
        assert result.text == MEDIUM
        fast = result.results[2]
        assert fast.status == "failed" and fast.error is not None
        assert fast.error.code is l0.ErrorCode.NETWORK_ERROR
        assert result.results[0].status == "aborted"
        await settled(server, client)


async def test_complete_means_valid_a_fast_answer_failing_a_guardrail_loses() -> None:
    turns = _models(fast=Turn(tokens=words("TODO: write the answer"), delay=0.005))
    rule = l0.CustomPatternRule([r"\bTODO\b"], message="placeholder left in")
    async with OpenAIServer(turns=by_model(turns)) as server:
        client = client_for(server)
        result = await l0.race([ask(client, "slow"), ask(client, "medium"), ask(client, "fast")],
                               guardrails=[rule], retry=l0.Retry.none())
        assert isinstance(result, RaceResult)
        assert result.winner == 1 and result.text == MEDIUM
        fast = result.results[2]
        assert fast.status == "failed" and fast.error is not None
        assert isinstance(fast.error, l0.GuardrailError)
        await settled(server, client)


async def test_a_race_nobody_wins_raises_with_every_error() -> None:
    turns = {"a": Turn(status=400), "b": Turn(status=401)}
    async with OpenAIServer(turns=by_model(turns)) as server:
        client = client_for(server)
        with pytest.raises(l0.ProviderError) as caught:
            await l0.race([ask(client, "a"), ask(client, "b")], retry=l0.Retry.none())
        assert caught.value.code is l0.ErrorCode.ALL_STREAMS_EXHAUSTED
        assert caught.value.metadata["errors"] == ["BAD_REQUEST", "AUTH_ERROR"]
        await settled(server, client)


async def test_a_race_or_hedge_without_a_winner_still_ends_on_the_bus() -> None:
    async def broken() -> str:
        raise PermissionError("no")

    seen: list[l0.ObservabilityEvent] = []
    with pytest.raises(l0.L0Error):
        await l0.race([broken, broken], retry=l0.Retry.none(), on_event=seen.append)
    own = [e for e in seen if e.type.value.startswith("RACE")]
    assert [e.type for e in own] == [T.RACE_START, T.RACE_END]
    assert own[-1]["winner"] is None and own[-1]["outcomes"] == ["failed", "failed"]
    seen.clear()
    with pytest.raises(l0.L0Error):
        await l0.hedge(broken, after=0.0, retry=l0.Retry.none(), on_event=seen.append)
    own = [e for e in seen if e.type.value.startswith("HEDGE")]
    assert [e.type for e in own] == [T.HEDGE_START, T.HEDGE_BACKUP_START, T.HEDGE_END]
    assert own[-1]["winner"] is None and own[-1]["started"] == 2
    assert own[-1]["outcomes"] == ["failed", "failed"]


async def test_first_token_counts_any_output_not_only_text() -> None:
    async def tool_first() -> AsyncIterator[l0.Event]:
        await asyncio.sleep(0.01)
        yield ToolCall("c1", "lookup", {"q": "x"})
        await asyncio.sleep(0.3)
        yield Complete("", None, "tool_calls")

    async def text_later() -> AsyncIterator[l0.Event]:
        await asyncio.sleep(0.1)
        yield Token("hello")
        yield Complete("", None, "stop")

    live = await l0.race([text_later, tool_first], win="first_token")
    assert live.winner == 1 and live.results[0].status == "aborted"
    events = [event async for event in live]
    assert [type(e) for e in events] == [ToolCall, Complete]


async def test_an_empty_stream_does_not_win_a_first_token_race() -> None:
    async def empty() -> AsyncIterator[l0.Event]:
        yield Complete("", None, "stop")

    async def text_later() -> AsyncIterator[l0.Event]:
        await asyncio.sleep(0.05)
        yield Token("hello")
        yield Complete("", None, "stop")

    live = await l0.race([empty, text_later], win="first_token", detect_zero_tokens=False)
    assert live.winner == 1 and await live.read() == "hello"


async def test_first_token_race_hands_over_the_live_winner() -> None:
    turns = _models(slow=Turn(tokens=words(SLOW), first_delay=0.5),
                    fast=Turn(tokens=words(QUICK), delay=0.05))
    async with OpenAIServer(turns=by_model(turns)) as server:
        client = client_for(server)
        live = await l0.race([ask(client, "slow"), ask(client, "fast")], win="first_token",
                             timeout=FAST)
        assert isinstance(live, LiveStream)
        assert live.winner == 1
        # handed over at its first token, still streaming
        assert live.state.token_count == 1 and not live.state.completed
        assert live.results[0].status == "aborted"
        assert await server.wait_idle(within=0.1) is False  # the winner is still being written
        tokens = [event.text async for event in live if event.is_token]
        assert tokens == words(QUICK)
        assert live.text == QUICK and live.error is None
        assert live.results[1].status == "succeeded"
        # the slow model's connection was closed (the server notices at its next write)
        assert await eventually(lambda: server.abandoned == 1)
        await settled(server, client)


async def test_first_token_winner_read_and_closed() -> None:
    async with OpenAIServer(turns=by_model(_models())) as server:
        client = client_for(server)
        live = await l0.race([ask(client, "medium"), ask(client, "fast")], win="first_token")
        assert isinstance(live, LiveStream)
        assert await live.read() == QUICK
        live2 = await l0.race([ask(client, "slow"), ask(client, "medium")], win="first_token")
        assert isinstance(live2, LiveStream)
        async with live2:
            pass  # closed without reading: the winner's connection is released too
        assert live2.state.aborted or not live2.state.completed
        await settled(server, client)
        assert server.abandoned == 3


async def test_race_rejects_bad_input() -> None:
    with pytest.raises(l0.ConfigError, match="win must be"):
        await l0.race([lambda: None], win="fastest")
    with pytest.raises(l0.ConfigError, match="at least 1 tasks"):
        await l0.race([])
    with pytest.raises(l0.ConfigError, match=r"tasks\[0\] must be a stream factory"):
        await l0.race(["gpt-4o"])
    with pytest.raises(l0.ConfigError, match="unknown option"):
        await l0.race([lambda: None], retries=3)


# -- hedging ----------------------------------------------------------------------------------


async def test_hedge_starts_a_backup_only_after_the_delay_and_keeps_the_first() -> None:
    turns = [Turn(tokens=words(SLOW), first_delay=0.6), Turn(tokens=words(QUICK))]
    seen: list[l0.ObservabilityEvent] = []
    async with OpenAIServer(turns=turns) as server:
        client = client_for(server)
        started = time.monotonic()
        live = await l0.hedge(ask(client, "gpt-4o"), after=0.2, max_extra=1, timeout=FAST,
                              on_event=seen.append)
        assert live.winner == 1
        assert await live.read() == QUICK
        assert time.monotonic() - started < 0.55
        # at the server: the backup's request came ~0.2 s after the primary's (less the
        # primary's extra cost of opening the SDK's first connection)
        first, backup = server.completion_requests
        gap = backup.at - first.at
        assert 0.15 <= gap < 0.5, gap
        assert live.results[0].status == "aborted"
        await settled(server, client)
        assert server.abandoned == 1
    own = [e for e in seen if e.stream_id == live.id]
    assert [e.type for e in own] == [T.HEDGE_START, T.HEDGE_BACKUP_START, T.RACE_WINNER,
                                     T.HEDGE_END]
    assert own[1]["delayMs"] >= 200.0
    # and by the sessions' own clocks: the backup began after the delay
    starts = {e.context["taskIndex"]: e.ts for e in seen if e.type is T.SESSION_START}
    assert starts[1] - starts[0] >= 200.0


async def test_hedge_starts_no_backup_when_the_first_stream_is_quick() -> None:
    quick_start = Turn(tokens=words(QUICK), first_delay=0.001, delay=0.1)
    async with OpenAIServer(turns=[quick_start]) as server:
        client = client_for(server)
        live = await l0.hedge(ask(client, "gpt-4o"), after=0.05, max_extra=2)
        assert live.winner == 0
        assert await live.read() == QUICK  # takes ~0.5 s, long after ``after``
        await asyncio.sleep(0.1)
        assert len(server.completion_requests) == 1
        assert len(live.results) == 1
        await settled(server, client)


async def test_hedge_starts_the_backup_at_once_when_the_first_fails() -> None:
    turns = [Turn(status=400), Turn(tokens=words(QUICK))]
    async with OpenAIServer(turns=turns) as server:
        client = client_for(server)
        started = time.monotonic()
        live = await l0.hedge(ask(client, "gpt-4o"), after=5.0, retry=l0.Retry.none())
        assert await live.read() == QUICK
        assert time.monotonic() - started < 1.0
        assert live.results[0].status == "failed"
        await settled(server, client)


async def test_hedge_after_a_percentile_of_recent_times_to_first_token() -> None:
    history = LatencyHistory(size=50, minimum=5)
    for ms in range(10, 110, 10):  # 10 ... 100 ms
        history.record(ms / 1000.0)
    assert history.percentile(50) == pytest.approx(0.05)
    assert history.percentile(90) == pytest.approx(0.09)
    turns = [Turn(tokens=words(SLOW), first_delay=0.4), Turn(tokens=words(QUICK))]
    seen: list[l0.ObservabilityEvent] = []
    async with OpenAIServer(turns=turns) as server:
        client = client_for(server)
        live = await l0.hedge(ask(client, "gpt-4o"), after="p90", history=history,
                              on_event=seen.append)
        assert await live.read() == QUICK
        assert len(server.completion_requests) == 2
        await settled(server, client)
    [start] = [e for e in seen if e.type is T.HEDGE_START]
    assert start["afterMs"] == pytest.approx(90.0)
    starts = {e.context["taskIndex"]: e.ts for e in seen if e.type is T.SESSION_START}
    assert starts[1] - starts[0] >= 90.0
    assert len(history) == 11  # the time the caller waited for a first token was recorded
    # ... from the primary's start: the backup started after 90 ms, so at least that
    assert history._recent[-1] >= 0.09


async def test_hedge_percentiles_need_a_history_or_a_key() -> None:
    with pytest.raises(l0.ConfigError, match=r"history=.*or key="):
        await l0.hedge(lambda: None, after="p95")
    with pytest.raises(l0.ConfigError, match="key must be a string"):
        await l0.hedge(lambda: None, after="p95", key=5)

    async def quick() -> str:
        return "ok"

    live = await l0.hedge(quick, after="p95", key="test-hedge-key")
    assert await live.read() == "ok"
    race_module = sys.modules["l0_core.multi.race"]
    assert len(race_module._HISTORIES["test-hedge-key"]) == 1
    assert len(race_module._HISTORIES) <= race_module._MAX_KEYS


def test_the_per_key_histories_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    race_module = sys.modules["l0_core.multi.race"]
    monkeypatch.setattr(race_module, "_HISTORIES", type(race_module._HISTORIES)())
    monkeypatch.setattr(race_module, "_MAX_KEYS", 2)
    first = race_module._history_for("a")
    race_module._history_for("b")
    assert race_module._history_for("a") is first  # used again: kept, "b" is now the oldest
    race_module._history_for("c")
    assert list(race_module._HISTORIES) == ["a", "c"]


def test_latency_history_rejects_bad_sizes() -> None:
    with pytest.raises(l0.ConfigError, match="size must be"):
        LatencyHistory(size=0)
    with pytest.raises(l0.ConfigError, match="size must be"):
        LatencyHistory(size=-1)
    with pytest.raises(l0.ConfigError, match="minimum must be"):
        LatencyHistory(minimum=-1)


def test_latency_history_is_bounded_and_needs_samples() -> None:
    history = LatencyHistory(size=3, minimum=2)
    assert history.percentile(50) is None
    for v in (5.0, 1.0, 2.0, 3.0):
        history.record(v)
    assert len(history) == 3
    assert history.percentile(100) == 3.0  # 5.0 went out first


async def test_hedge_rejects_bad_input() -> None:
    with pytest.raises(l0.ConfigError, match="after must be"):
        await l0.hedge(lambda: None, after="fast")
    with pytest.raises(l0.ConfigError, match="after must be"):
        await l0.hedge(lambda: None, after=-1)
    with pytest.raises(l0.ConfigError, match="max_extra must be"):
        await l0.hedge(lambda: None, max_extra=-1)
    with pytest.raises(l0.ConfigError, match="default_after must be"):
        await l0.hedge(lambda: None, default_after="1s")


async def test_hedge_over_a_list_primary_then_backup_model() -> None:
    turns = {"primary": Turn(tokens=words(SLOW), first_delay=0.4),
             "backup": Turn(tokens=words(QUICK))}
    async with OpenAIServer(turns=by_model(turns)) as server:
        client = client_for(server)
        live = await l0.hedge([ask(client, "primary"), ask(client, "backup")], after=0.05)
        assert live.winner == 1 and await live.read() == QUICK
        assert [r.body["model"] for r in server.completion_requests] == ["primary", "backup"]
        await settled(server, client)


async def test_value_tasks_race_too() -> None:
    async def slow() -> dict[str, str]:
        await asyncio.sleep(0.2)
        return {"from": "slow"}

    async def quick() -> dict[str, str]:
        return {"from": "quick"}

    result = await l0.race([slow, quick])
    assert result.winner == 1 and result.value == {"from": "quick"}
    live = await l0.race([slow, quick], win="first_token")
    assert live.winner == 1
    events = [event async for event in live]
    assert isinstance(events[0], l0.Data) and events[0].data == {"from": "quick"}
    assert events[-1].is_complete


async def test_a_loser_that_finished_in_the_same_moment_says_why_it_lost() -> None:
    async def a() -> str:
        return "a"

    result = await l0.race([a, a])
    assert result.winner == 0
    loser = result.results[1]
    assert loser.status in ("succeeded", "aborted")
    assert loser.reason is not None and loser.reason.startswith("lost the race to task 0")

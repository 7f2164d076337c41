"""The orchestrations use the runtime through public names only (Stream.finished,
Stream.failure, observability_listeners), and a live winner's end reads right."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.events import Complete, Token
from l0_core.multi import StepContext
from l0_core.runtime.stream import observability_listeners

MULTI = Path(l0.__file__).parent / "multi"


def test_multi_uses_no_private_runtime_names() -> None:
    private = re.compile(r"\._session\b|runtime\.\w+ import .*\b_\w+|\b_configuration\b"
                         r"|\b_listeners\b")
    for path in sorted(MULTI.glob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not private.search(line), f"{path.name}:{number}: {line.strip()}"


async def _words() -> AsyncIterator[l0.Event]:
    yield Token("a ")
    await asyncio.sleep(0.01)
    yield Token("b")
    yield Complete("", None, "stop")


async def _fails() -> AsyncIterator[str]:
    yield "x"
    raise PermissionError("no")


async def test_stream_finished_and_failure() -> None:
    stream = l0.run(stream=_words)
    assert not stream.finished and stream.failure is None
    assert await stream.read() == "a b"
    assert stream.finished and stream.failure is None
    broken = l0.run(stream=_fails, retry=l0.Retry.none())
    with pytest.raises(l0.L0Error) as caught:
        await broken.read()
    assert broken.finished and broken.failure is caught.value


def test_observability_listeners() -> None:
    def on_event(event: l0.ObservabilityEvent) -> None:
        pass

    listeners = observability_listeners(on_event, [], None)
    assert [name for name, _ in listeners] == ["on_event"]
    assert observability_listeners(None, [], None) == []


async def test_a_live_winner_the_caller_aborts_or_closes_is_aborted() -> None:
    async def slow() -> AsyncIterator[l0.Event]:
        await asyncio.sleep(0.5)
        yield Token("late")

    live = await l0.race([slow, _words], win="first_token")
    assert live.winner == 1 and live.results[1].status == "running"
    live.abort()
    with pytest.raises(l0.L0Error):
        await live.read()
    assert live.results[1].status == "aborted"
    assert live.error is not None and live.error.code is l0.ErrorCode.STREAM_ABORTED
    closed = await l0.race([slow, _words], win="first_token")
    await closed.aclose()
    assert closed.results[1].status == "aborted"


async def test_nested_orchestrations_carry_the_parent_id() -> None:
    seen: list[l0.ObservabilityEvent] = []
    T = l0.ObservabilityEventType

    async def answer() -> str:
        return "a"

    async def nested() -> str:
        race = await l0.race([answer, answer], on_event=seen.append)
        return race.text

    results = await l0.parallel([nested], on_event=seen.append, context={"requestId": "r"})
    assert results.texts == ["a"]
    [start] = [e for e in seen if e.type is T.RACE_START]
    assert start.context["parentId"] == results.id
    race_children = {e.context["parentId"] for e in seen
                     if e.type is T.SESSION_START and e.context.get("parentId") != results.id}
    assert race_children == {start.stream_id}
    # outside any orchestration: no parent
    seen.clear()
    await l0.race([answer], on_event=seen.append)
    assert "parentId" not in seen[0].context


async def test_an_orchestration_inside_a_pipeline_step_carries_the_pipeline_id() -> None:
    seen: list[l0.ObservabilityEvent] = []

    async def answer() -> str:
        return "a"

    async def ask_twice(value: Any, ctx: StepContext) -> str:
        voted = await l0.consensus([answer, answer], on_event=seen.append)
        return voted.text

    result = await l0.pipe([l0.Step("vote", ask_twice)], "in")
    assert result.output == "a"
    [start] = [e for e in seen if e.type is l0.ObservabilityEventType.CONSENSUS_START]
    assert start.context["parentId"] == result.id

"""Window.process_all: every chunk through l0.run, in order, with retries, drift and context
restoration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.testing import instant_backoff
from l0_core.text.window import Chunk

pytestmark = pytest.mark.asyncio

DOC = (Path(__file__).parent / "data" / "alice-chapter-1.txt").read_text(encoding="utf-8")


@pytest.fixture
def window() -> l0.Window:
    return l0.Window.create(DOC, size=300, overlap=30, preserve_sentences=True,
                            tokenizer="estimate")


def summarise(chunk: Chunk) -> str:
    return f"[{chunk.index}:{chunk.text.split()[0]}]"


async def test_results_in_order_with_bounded_concurrency(window: l0.Window) -> None:
    running = peak = 0

    async def answer(chunk: Any) -> AsyncIterator[str]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.01 * ((chunk.index * 7) % 5))  # finish out of order
            yield summarise(chunk)
        finally:
            running -= 1

    results = await window.process_all(answer, concurrency=3)
    assert [r.text for r in results] == [summarise(c) for c in window]
    assert [r.chunk for r in results] == list(window)
    assert all(r.ok and r.state is not None and r.state.attempt == 1 for r in results)
    assert peak == 3


async def test_one_faulty_chunk_is_retried(window: l0.Window) -> None:
    calls: dict[int, int] = {}
    retries: list[tuple[int, str]] = []

    async def answer(chunk: Any) -> AsyncIterator[str]:
        calls[chunk.index] = calls.get(chunk.index, 0) + 1
        yield "partial "
        if chunk.index == 2 and calls[2] == 1:
            raise ConnectionResetError("the connection dropped")
        yield summarise(chunk)

    with instant_backoff():
        results = await window.process_all(
            answer, concurrency=2, on_retry=lambda attempt, reason: retries.append(
                (attempt, reason)))
    assert [r.text for r in results] == [f"partial {summarise(c)}" for c in window]
    assert calls == {c.index: 2 if c.index == 2 else 1 for c in window}
    assert [r.state.network_retry_count for r in results if r.state] == [
        1 if c.index == 2 else 0 for c in window]
    assert len(retries) == 1
    assert all(r.restorations == 0 and len(r.stream_ids) == 1 for r in results)


async def test_a_chunk_that_keeps_failing_is_reported_not_raised(window: l0.Window) -> None:
    async def answer(chunk: Any) -> AsyncIterator[str]:
        if chunk.index == 1:
            raise ConnectionResetError("down")
        yield "ok"

    with instant_backoff():
        results = await window.process_all(answer, retry=l0.Retry(network_attempts=1))
    assert [r.ok for r in results] == [i != 1 for i in range(len(window))]
    failed = results[1]
    assert failed.text == "" and isinstance(failed.error, l0.NetworkError)
    assert failed.state is not None and failed.state.attempt == 2


DRIFTED = "As an AI language model, I cannot summarise this."


async def test_drift_is_retried_with_adjacent_context(window: l0.Window) -> None:
    seen: list[l0.ObservabilityEvent] = []
    given: list[tuple[int, str, str]] = []

    async def answer(chunk: Any) -> AsyncIterator[str]:
        given.append((chunk.index, chunk.before, chunk.after))
        # chunk 3 drifts unless it is given its neighbours' text
        if chunk.index == 3 and not chunk.before:
            for word in DRIFTED.split(" "):
                yield word + " "
            return
        yield summarise(chunk)

    def on_event(event: l0.ObservabilityEvent) -> None:
        if event.type is l0.ObservabilityEventType.CONTEXT_RESTORED:
            seen.append(event)

    results = await window.process_all(answer, drift=True, on_event=on_event,
                                       check_intervals=l0.CheckIntervals(drift=1))
    assert [r.text for r in results] == [summarise(c) for c in window]
    restored = results[3]
    assert restored.restorations == 1 and len(restored.stream_ids) == 2
    assert restored.chunk.before == DOC[window[2].start:window[3].start]
    assert restored.chunk.after == DOC[window[3].end:window[4].end]
    assert [i for i, before, _ in given].count(3) == 2
    assert [(e["chunkIndex"], e["restoration"], e["driftTypes"]) for e in seen] == [
        (3, 1, ["meta_commentary"])]
    assert seen[0].stream_id == restored.stream_ids[0]
    assert all(r.restorations == 0 for i, r in enumerate(results) if i != 3)


async def test_restoration_gives_up_after_restore_context(window: l0.Window) -> None:
    async def answer(chunk: Any) -> AsyncIterator[str]:
        if chunk.index == 0:
            yield DRIFTED
            return
        yield "fine"

    results = await window.process_all(answer, drift=True, restore_context=2,
                                       check_intervals=l0.CheckIntervals(drift=1))
    first = results[0]
    assert first.restorations == 2 and len(first.stream_ids) == 3
    assert first.error is not None and first.error.metadata["driftTypes"] == ["meta_commentary"]
    # chunk 0 has nothing before it: it grows after, one chunk per restoration
    assert first.chunk.before == "" and first.chunk.after == DOC[window[0].end:window[2].end]
    assert all(r.ok for r in results[1:])


async def test_flagged_drift_is_restored_too(window: l0.Window) -> None:
    async def answer(chunk: Any) -> AsyncIterator[str]:
        yield DRIFTED if chunk.index == 1 and not chunk.after else "fine"

    results = await window.process_all(answer, drift=True, drift_action="flag",
                                       check_intervals=l0.CheckIntervals(drift=1))
    assert [r.text for r in results] == ["fine"] * len(window)
    assert results[1].restorations == 1


async def test_without_restoration_drift_is_a_plain_retry(window: l0.Window) -> None:
    calls = 0

    async def answer(chunk: Any) -> AsyncIterator[str]:
        nonlocal calls
        if chunk.index == 0:
            calls += 1
            yield DRIFTED if calls == 1 else "fine"
            return
        yield "fine"

    with instant_backoff():
        results = await window.process_all(answer, drift=True, restore_context=0,
                                           check_intervals=l0.CheckIntervals(drift=1))
    assert [r.text for r in results] == ["fine"] * len(window)
    assert results[0].restorations == 0 and calls == 2
    assert results[0].state is not None and results[0].state.model_retry_count == 1


async def test_empty_window() -> None:
    async def answer(chunk: Any) -> AsyncIterator[str]:
        yield "x"

    assert await l0.Window.create("").process_all(answer) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"concurrency": 0}, "concurrency must be a positive int"),
    ({"restore_context": -1}, "restore_context must be an int >= 0"),
    ({"stream": "x"}, "pass the stream through factory_for_chunk"),
    ({"retry": "sometimes"}, "retry"),
    ({"no_such_option": 1}, "no_such_option"),
])
async def test_bad_options_fail_before_any_work(window: l0.Window, kwargs: dict[str, Any],
                                                message: str) -> None:
    called = []

    def answer(chunk: Any) -> Any:
        called.append(chunk)
        raise AssertionError("not called")

    with pytest.raises(l0.ConfigError, match=message):
        await window.process_all(answer, **kwargs)
    with pytest.raises(l0.ConfigError, match="factory_for_chunk must be a function"):
        await window.process_all("nope")  # type: ignore[arg-type]
    assert called == []


async def test_guardrails_apply_to_every_chunk(window: l0.Window) -> None:
    calls: dict[int, int] = {}

    async def answer(chunk: Any) -> AsyncIterator[str]:
        calls[chunk.index] = calls.get(chunk.index, 0) + 1
        yield "TODO" if chunk.index == 0 and calls[0] == 1 else summarise(chunk)

    rule = l0.CustomPatternRule([r"\bTODO\b"], message="placeholder left in")
    with instant_backoff():
        results = await window.process_all(answer, guardrails=[rule])
    assert [r.text for r in results] == [summarise(c) for c in window]
    assert calls[0] == 2 and all(calls[c.index] == 1 for c in list(window)[1:])
    assert results[0].state is not None
    assert [e.code for e in results[0].state.errors] == [l0.ErrorCode.GUARDRAIL_VIOLATION]

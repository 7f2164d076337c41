"""Continuation from the last good token, overlap removal, and the guardrail/drift hooks."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import l0_core as l0
from l0_core.runtime.continuation import OverlapRemover, find_overlap
from l0_core.testing import FakeChunkAdapter, Script, ScriptedSource
from tests.core.helpers import Recorder, consume

EVERY_TOKEN = l0.CheckIntervals(guardrails=1)  # check each token before delivery

pytestmark = pytest.mark.usefixtures("instant")


def test_find_overlap() -> None:
    assert find_overlap("The quick brown", "brown fox") == 5
    assert find_overlap("abc", "xyz") == 0
    assert find_overlap("aa", "a") == 0  # below min_overlap
    assert find_overlap("hello world", "world!", max_overlap=3) == 0


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if text[a:b]]


@given(
    checkpoint=st.text(alphabet="ab c", min_size=0, max_size=30),
    overlap=st.integers(0, 12),
    rest=st.text(alphabet="ab cd", max_size=30),
    cuts=st.lists(st.integers(0, 80), max_size=8),
)
def test_overlap_removal_is_independent_of_token_boundaries(
    checkpoint: str, overlap: int, rest: str, cuts: list[int]
) -> None:
    continuation = checkpoint[len(checkpoint) - min(overlap, len(checkpoint)):] + rest
    expected = continuation[find_overlap(checkpoint, continuation):]
    remover = OverlapRemover(checkpoint, 2, 500)
    out = "".join(remover.push(t) for t in split(continuation, cuts)) + remover.flush()
    assert out == expected


async def test_resume_reaches_the_factory_and_text_is_seamless() -> None:
    resumes: list[l0.Resume | None] = []
    scripts = [Script(["The quick", " brown", " fox"], fail_after=2),
               Script(["brown", " fox", " jumps"])]
    source = ScriptedSource(scripts)

    def factory(resume: l0.Resume | None) -> Any:
        resumes.append(resume)
        return source(resume)

    got = await consume(l0.run(stream=factory, continue_from_last_good_token=True,
                               build_continuation_prompt=lambda cp: f"CONTINUE: {cp}"))
    assert got.error is None
    assert got.text == "The quick brown fox jumps"
    assert resumes[0] is None
    assert resumes[1] is not None
    assert resumes[1].checkpoint == "The quick brown"
    assert resumes[1].prompt == "CONTINUE: The quick brown"
    assert got.kinds == ["token", "token", "error", "token", "token", "complete"]
    assert [e.text for e in got.events if e.is_token] == ["The quick", " brown", " fox",
                                                          " jumps"]


async def test_continuation_events_and_state() -> None:
    rec = Recorder()
    resumed: list[tuple[str, int]] = []
    source = ScriptedSource([Script(["one", " two"], fail_after=2), Script([" three"])])
    stream = l0.run(stream=source, continue_from_last_good_token=True, on_event=rec,
                    on_resume=lambda cp, n: resumed.append((cp, n)))
    assert await stream.read() == "one two three"
    assert stream.state.resumed and stream.state.continuation_used
    assert resumed == [("one two", 2)]
    assert [e["checkpoint"] for e in rec.of("CONTINUATION_START")] == ["one two"]


async def test_fallback_without_continuation_resets_and_announces_discard() -> None:
    primary = ScriptedSource([Script(["fail-", "1"], fail_after=2)])
    backup = ScriptedSource([Script(["fallback-success"])])
    got = await consume(l0.run(stream=primary, fallbacks=[backup], retry=l0.Retry.none()))
    assert got.text == "fallback-success"
    discard = next(e for e in got.events if e.is_discard)
    assert isinstance(discard, l0.Discard)
    assert (discard.text, discard.offset, discard.length) == ("fail-1", 0, 6)


async def test_all_streams_exhausted() -> None:
    primary = ScriptedSource([Script(["x"], fail_after=0)])
    backup = ScriptedSource([Script(["y"], fail_after=0)])
    got = await consume(l0.run(stream=primary, fallbacks=[backup], retry=l0.Retry.none()))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.ALL_STREAMS_EXHAUSTED
    assert isinstance(got.error.__cause__, l0.L0Error)


async def test_length_finish_is_continued() -> None:
    source = ScriptedSource([Script(["Once upon"], kind="chunks", finish_reason="length"),
                             Script([" a time"], kind="chunks")])
    stream = l0.run(stream=source, adapter=FakeChunkAdapter(),
                    continue_from_last_good_token=True)
    assert await stream.read() == "Once upon a time"
    assert source.calls == 2
    assert source.resumes[1].checkpoint == "Once upon"


def pattern_rule(severity: str) -> l0.CustomPatternRule:
    return l0.CustomPatternRule([r"forbidden"], severity=severity)  # type: ignore[arg-type]


async def test_streaming_error_stops_the_attempt_at_once_and_retries() -> None:
    source = ScriptedSource([Script(["ok ", "forbid", "den", " more", " text"]),
                             Script(["clean"])])
    got = await consume(l0.run(stream=source, guardrails=[pattern_rule("error")],
                               check_intervals=EVERY_TOKEN))
    assert got.text == "clean"
    assert source.streams[0].yielded == 3  # nothing read after the violation
    tokens = [e.text for e in got.events if e.is_token]
    assert tokens == ["ok ", "forbid", "clean"]  # the violating token is never delivered


async def test_fatal_violation_halts_mid_stream() -> None:
    source = ScriptedSource([Script(["a ", "forbidden", " b"]), Script(["never"])])
    got = await consume(l0.run(stream=source, guardrails=[pattern_rule("fatal")],
                               check_intervals=EVERY_TOKEN))
    assert isinstance(got.error, l0.GuardrailError)
    assert got.error.code is l0.ErrorCode.FATAL_GUARDRAIL_VIOLATION
    assert source.calls == 1
    assert got.text == "a "


async def test_warning_is_recorded_and_reported() -> None:
    seen: list[l0.Violation] = []
    stream = l0.run(stream=ScriptedSource([Script(["x forbidden y"])]),
                    guardrails=[pattern_rule("warning")], on_violation=seen.append)
    assert await stream.read() == "x forbidden y"
    assert [v.severity for v in stream.state.violations] == ["warning"]
    assert seen == stream.state.violations


async def test_rule_state_is_per_session_under_concurrency() -> None:
    shared = [l0.Guardrails.custom_pattern([r"bad"])]

    async def one(i: int) -> tuple[int, str]:
        tokens = ["b", "a", "d"] if i % 2 else ["g", "o", "o", "d"]
        source = ScriptedSource([Script(tokens), Script(["fixed"])])
        text = await l0.run(stream=source, guardrails=shared).read()
        return source.calls, text

    results = await asyncio.gather(*(one(i) for i in range(100)))
    for i, (calls, text) in enumerate(results):
        assert (calls, text) == ((2, "fixed") if i % 2 else (1, "good"))


class LoopDetector:
    def __init__(self) -> None:
        self.seen = ""

    def check_delta(self, delta: str, offset: int) -> l0.DriftResult | None:
        self.seen += delta
        return l0.DriftResult(["repetition"], 0.9) if self.seen.count("again") >= 2 else None


@pytest.mark.parametrize(("action", "calls", "code"), [
    ("retry", 2, None), ("flag", 1, None),
    ("halt", 1, l0.ErrorCode.FATAL_GUARDRAIL_VIOLATION),
])
async def test_drift_policy(action: str, calls: int, code: l0.ErrorCode | None) -> None:
    rec = Recorder()
    source = ScriptedSource([Script(["again ", "again ", "again"]), Script(["fresh"])])
    got = await consume(l0.run(stream=source, drift=LoopDetector, drift_action=action,
                               check_intervals=l0.CheckIntervals(drift=1), on_event=rec))
    assert source.calls == calls
    assert (got.error.code if isinstance(got.error, l0.L0Error) else None) == code
    # reported once, at onset, even though the third token still matches
    assert [e["detected"] for e in rec.of("DRIFT_CHECK_RESULT")].count(True) == 1


async def test_default_interval_finds_a_violation_within_sixteen_tokens() -> None:
    tokens = [f" w{i}" for i in range(3)] + [" forbidden"] + [f" x{i}" for i in range(30)]
    source = ScriptedSource([Script(tokens), Script(["clean"])])
    got = await consume(l0.run(stream=source, guardrails=[pattern_rule("error")]))
    assert got.text == "clean"  # what was delivered before the check is discarded
    assert source.streams[0].yielded == 16  # the attempt stopped at the first check
    discard = next(e for e in got.events if e.is_discard)
    assert isinstance(discard, l0.Discard)
    assert discard.text.startswith(" w0 w1 w2 forbidden")

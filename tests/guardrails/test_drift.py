"""The built-in drift detector: each signal, the switches, once at onset, the policies, and
a per-character cost that does not grow with the text."""

from __future__ import annotations

import json
import random
import string

import pytest

import l0_core as l0
from l0_core.guardrails.drift import create_detector
from l0_core.guardrails.drift_detector import Drift, DriftDetector
from l0_core.testing import Script, ScriptedSource
from tests.core.helpers import Recorder, consume
from tests.guardrails.helpers import split

SENTENCE = ("the report shows that revenue grew in the third quarter while costs stayed flat "
            "because the new supplier delivered parts on time and the team reduced waste across "
            "several plants which improved margins for the whole division this year")
WORDS = SENTENCE.split()


def prose(n_words: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(n_words):
        w = rng.choice(WORDS)
        out.append(w.capitalize() if i % 12 == 0 else w)
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out) + " "


def feed(text: str, detector: DriftDetector | None = None, step: int = 50) -> list[str]:
    """The drift types reported, in order, for ``text`` given ``step`` characters at a time."""
    d = detector or DriftDetector()
    types: list[str] = []
    for i in range(0, len(text), step):
        result = d.check_delta(text[i : i + step], i)
        if result is not None:
            assert 0.0 <= result.confidence <= 1.0
            types.extend(result.types)
    return types


BASE = prose(600)  # about 4 000 characters of ordinary text

CRAFTED = {
    "meta_commentary": BASE + "As an AI language model, I cannot feel. More text follows. ",
    "hedging": BASE + "\nSure, here is more.\n",
    "format_collapse": BASE + "\nHere is the rest of it.\n",
    "repetition": BASE + "I will say it again and again and again. " * 40,
    "entropy_spike": BASE + "".join(random.Random(7).choices(
        string.ascii_letters + string.digits + "+/=#@!%&", k=1500)),
    "tone_shift": BASE + ("lol this is gonna be awesome!! yeah dude, wow. " + prose(8, 3)) * 12,
    "markdown_collapse": "# Report\n\n## Summary\n\n- **one**: `a`\n- **two**: `b`\n"
                         "- **three**: `c`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
                         + prose(400).replace("\n", " "),
}


@pytest.mark.parametrize("kind", list(CRAFTED))
def test_each_signal_is_detected_on_crafted_text(kind: str) -> None:
    types = feed(CRAFTED[kind])
    assert kind in types, types
    assert types.count(kind) == 1  # reported once, at onset


@pytest.mark.parametrize("kind", list(CRAFTED))
def test_each_switch_turns_its_signal_off(kind: str) -> None:
    assert kind not in feed(CRAFTED[kind], DriftDetector(**{f"detect_{kind}": False}))


@pytest.mark.parametrize("text", [BASE, prose(3000, seed=5), json.dumps(
    [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "ok": i % 2 == 0} for i in range(400)]),
    "# Title\n\n" + "".join(f"- point {i}: {prose(6, i)}\n" for i in range(200))])
def test_ordinary_text_does_not_drift(text: str) -> None:
    assert feed(text) == []
    assert feed(text, step=7) == []


def test_the_onset_is_where_the_drift_starts() -> None:
    d = DriftDetector()
    offset = 0
    for piece in split(BASE, range(0, len(BASE), 40)):
        assert d.check_delta(piece, offset) is None
        offset += len(piece)
    result = d.check_delta("Sure, as an AI I think so. ", offset)
    assert result is not None and set(result.types) == {"meta_commentary"}
    assert d.check_delta("As an AI, again. ", offset + 27) is None  # not again


def test_create_and_the_drift_true_shortcut() -> None:
    d = DriftDetector(detect_tone_shift=False, window=600)
    fresh = d.create()
    assert isinstance(fresh, DriftDetector) and fresh is not d
    assert Drift is DriftDetector
    assert isinstance(create_detector(True), DriftDetector)
    assert create_detector(False) is None
    with pytest.raises(ValueError, match="sample_chars"):
        DriftDetector(sample_chars=2)


def test_sample_every_leaves_out_blocks_once_the_baselines_are_in() -> None:
    text = prose(3000)  # about 20 000 characters
    full = DriftDetector(sample_every=1)
    half = DriftDetector()  # sample_every=2
    third = DriftDetector(sample_every=3)
    for d in (full, half, third):
        assert feed(text, d) == []
    baseline = (8 + 2) * 256  # (min_samples + entropy_window) samples, all sampled
    assert full.work == len(text) - len(text) % 256 or full.work == len(text)
    assert abs(half.work - (baseline + (len(text) - baseline) / 2)) <= 2 * 256
    assert abs(third.work - (baseline + (len(text) - baseline) / 3)) <= 3 * 256
    with pytest.raises(ValueError, match="sample_every"):
        DriftDetector(sample_every=0)


@pytest.mark.parametrize("every", [1, 2, 3])
@pytest.mark.parametrize("kind", ["repetition", "entropy_spike", "tone_shift"])
def test_long_text_drift_is_found_whatever_blocks_are_sampled(every: int, kind: str) -> None:
    base = prose(2000, seed=5)  # the drift starts after the baselines, where blocks are left out
    tail = {
        "repetition": "I will say it again and again and again. " * 60,
        "entropy_spike": "".join(random.Random(3).choices(
            string.ascii_letters + string.digits + "+/=#@!%&", k=2500)),
        "tone_shift": ("lol this is gonna be awesome!! yeah dude, wow. " + prose(8, 3)) * 20,
    }[kind]
    types = feed(base + tail, DriftDetector(sample_every=every))
    assert types[0] == kind  # (the repeated tone_shift text then loops, too)


@pytest.mark.parametrize("tokens", [2_000, 20_000])
def test_cost_per_character_is_flat(tokens: int) -> None:
    # one-line JSON, 20 000 tokens at most: the work and the state do not grow with the text
    record = json.dumps({"id": 123, "name": "widget", "tags": ["a", "b"], "price": 9.5})
    text = "[" + ", ".join([record] * (tokens // 20)) + "]"
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)][:tokens]
    d = DriftDetector()
    offset = 0
    peak = 0
    for i in range(0, len(pieces), 10):  # the default drift interval: 10 tokens a check
        delta = "".join(pieces[i : i + 10])
        d.check_delta(delta, offset)
        offset += len(delta)
        peak = max(peak, d.state_size)
    assert d.work <= offset  # every character sampled once
    assert d._scanner is not None and d._scanner.work <= offset // 4
    assert peak < 1_000  # bounded windows, whatever the length


def test_state_does_not_grow_from_2k_to_20k_tokens() -> None:
    sizes = []
    for n in (2_000, 20_000):
        text = prose(n, seed=n)
        d = DriftDetector()
        for i in range(0, len(text), 50):
            d.check_delta(text[i : i + 50], i)
        sizes.append(d.state_size)
    assert sizes[1] <= sizes[0] * 1.2 + 50


# -- through l0.run -------------------------------------------------------------------------------

def drifting() -> ScriptedSource:
    return ScriptedSource([Script(["Paris is the capital. ", "As an AI", " language model",
                                   ", I would add", " more."]),
                           Script(["Paris is the capital."])])


@pytest.mark.usefixtures("instant")
@pytest.mark.parametrize(("action", "calls", "code"), [
    ("retry", 2, None), ("flag", 1, None), ("halt", 1, l0.ErrorCode.FATAL_GUARDRAIL_VIOLATION),
])
async def test_drift_true_policies(action: str, calls: int, code: l0.ErrorCode | None) -> None:
    source = drifting()
    rec = Recorder()
    stream = l0.run(stream=source, drift=True, drift_action=action, on_event=rec,
                    check_intervals=l0.CheckIntervals(drift=1))
    got = await consume(stream)
    assert source.calls == calls
    assert (got.error.code if isinstance(got.error, l0.L0Error) else None) == code
    results = rec.of("DRIFT_CHECK_RESULT")
    detected = [e for e in results if e["detected"]]
    assert [e["types"] for e in detected] == [["meta_commentary"]]  # once, at onset
    # every other check is reported too, as nothing detected
    assert len(results) > len(detected)
    assert all(e["types"] == [] and e["score"] == 0.0 for e in results if not e["detected"])
    assert stream.state.drift_types == ["meta_commentary"]
    if action == "retry":
        assert got.text == "Paris is the capital."
        assert stream.errors[0].code is l0.ErrorCode.DRIFT_DETECTED
    if action == "flag":
        assert got.text.endswith("I would add more.")


@pytest.mark.usefixtures("instant")
async def test_drift_with_guardrails_and_continuation() -> None:
    source = drifting()
    stream = l0.run(stream=source, drift=True, guardrails=l0.Guardrails.recommended(),
                    continue_from_last_good_token=True,
                    check_intervals=l0.CheckIntervals(drift=1, checkpoint=1))
    text = await stream.read()
    assert text.startswith("Paris is the capital.") and text.endswith("Paris is the capital.")
    # the pattern rule sees meta commentary too: whichever reports first stops the attempt
    assert stream.errors[0].code in (l0.ErrorCode.DRIFT_DETECTED,
                                     l0.ErrorCode.GUARDRAIL_VIOLATION)
    assert source.calls == 2


@pytest.mark.usefixtures("instant")
async def test_continuation_drops_the_start_of_a_phrase_decided_later() -> None:
    source = drifting()
    stream = l0.run(stream=source, guardrails=[l0.Guardrails.pattern()],
                    continue_from_last_good_token=True,
                    check_intervals=l0.CheckIntervals(checkpoint=1))
    text = await stream.read()
    assert stream.errors[0].code is l0.ErrorCode.GUARDRAIL_VIOLATION
    assert stream.state.violations[0].position == 22
    assert "As an AI" not in text


async def test_a_detector_that_raises_is_skipped_and_reported() -> None:
    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def check_delta(self, delta: str, offset: int) -> None:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("boom")

    rec = Recorder()
    tokens = ["one ", "two ", "three ", "four"]
    stream = l0.run(stream=ScriptedSource([Script(tokens)]), drift=Broken, on_event=rec,
                    check_intervals=l0.CheckIntervals(drift=1))
    assert await stream.read() == "".join(tokens)  # the stream goes on
    (skipped,) = rec.of("DRIFT_CHECK_SKIPPED")
    assert "boom" in skipped["reason"]
    assert [e["detected"] for e in rec.of("DRIFT_CHECK_RESULT")] == [False, False, False]
    assert stream.state.drift_detected is False

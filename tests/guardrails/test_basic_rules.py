"""zero_output, stall and repetition; and no false positives on repetitive but real prose."""

from __future__ import annotations

import pytest

from l0_core.guardrails.drift_detector import DriftDetector
from l0_core.guardrails.rules import (
    JsonRule,
    LatexRule,
    MarkdownRule,
    PatternRule,
    RepetitionRule,
    StallRule,
    ZeroOutputRule,
)
from tests.guardrails.helpers import chars, run_rule, split

LEGAL = (
    "1. The Licensee shall not copy the Software except as expressly permitted by this "
    "Agreement. 2. The Licensee shall not modify the Software except as expressly permitted "
    "by this Agreement. 3. The Licensee shall not distribute the Software except as "
    "expressly permitted by this Agreement. 4. The Licensee shall not sublicense the "
    "Software except as expressly permitted by this Agreement. 5. The Licensor shall not be "
    "liable for any damages arising from the use of the Software, except as expressly "
    "provided by this Agreement. 6. Notwithstanding the foregoing, the Licensee shall "
    "indemnify the Licensor against any claim arising from the Licensee's use of the "
    "Software, except as expressly provided by this Agreement.\n"
)
BULLETS = "".join(
    f"- Add the {who} to the {group} group and notify the {who} by email.\n"
    for who, group in [("user", "admin"), ("team", "admin"), ("role", "editor"),
                       ("guest", "viewer"), ("owner", "admin"), ("robot", "service"),
                       ("tester", "qa"), ("lead", "admin")]
)
STEPS = "".join(f"Step {i}: open the file, edit line {i * 10}, then save the file.\n"
                for i in range(1, 15))
TABLE = "| name | value |\n|---|---|\n" + "".join(f"| item {i} | {i} |\n" for i in range(30))
REAL = {"legal": LEGAL, "bullets": BULLETS, "steps": STEPS, "table": TABLE}


@pytest.mark.parametrize("name", list(REAL))
def test_no_false_positive_on_repetitive_real_text(name: str) -> None:
    text = REAL[name]
    for rule_cls in (ZeroOutputRule, RepetitionRule, PatternRule, JsonRule, MarkdownRule,
                     LatexRule):
        for pieces in (chars(text), split(text, range(0, len(text), 5)), [text]):
            assert run_rule(rule_cls(), pieces) == [], (rule_cls.name, name)
    detector = DriftDetector()
    offset = 0
    for piece in split(text * 3, range(0, 3 * len(text), 40)):
        assert detector.check_delta(piece, offset) is None, name
        offset += len(piece)


# -- zero_output ------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "words"), [
    ("", "empty"), ("  \n\t ", "whitespace"), ("...", "punctuation"), ("?!?!", "punctuation"),
    ("aaaaaaaaaaaaaaaa", "noise"), ("hahahahahahahahaha", "noise"),
    ("1 1 1 1 1 1 1 1 1 1 1", "noise"),
])
def test_zero_output_catches_empty_and_noise(text: str, words: str) -> None:
    rule = ZeroOutputRule()
    assert rule.streaming is False
    (v,) = rule.check_complete(text) or []
    assert (v.rule, v.severity) == ("zero_output", "error") and words in v.message


@pytest.mark.parametrize("text", ["ok", "{}", "[]", "[{}]", "42", "Yes.", "aaaa", "ab ab ab",
                                  "Hi!"])
def test_zero_output_accepts_short_real_answers(text: str) -> None:
    assert ZeroOutputRule().check_complete(text) is None


def test_zero_output_options() -> None:
    assert ZeroOutputRule(noise_length=100).check_complete("a" * 50) is None
    assert ZeroOutputRule(severity="warning").check_complete("")[0].severity == "warning"  # type: ignore[index]


# -- stall ------------------------------------------------------------------------------------

def test_stall_warns_on_a_long_gap_between_deltas() -> None:
    now = [0.0]
    rule = StallRule(max_gap=2.0, clock=lambda: now[0])
    assert rule.check_delta("a", 0) is None
    now[0] = 1.5
    assert rule.check_delta("b", 1) is None
    now[0] = 4.0
    (v,) = rule.check_delta("c", 2) or []
    assert (v.rule, v.severity, v.position) == ("stall", "warning", 2)
    assert "2.5s" in v.message
    assert rule.check_complete("abc") is None
    assert StallRule().max_gap == 5.0
    with pytest.raises(ValueError, match="max_gap"):
        StallRule(max_gap=0)


def test_stall_copies_keep_the_clock() -> None:
    clock = [0.0]
    rule = StallRule(max_gap=1.0, clock=lambda: clock[0]).create()
    rule.check_delta("a", 0)
    clock[0] = 5.0
    assert rule.check_delta("b", 1)


# -- repetition -------------------------------------------------------------------------------

def test_repetition_catches_a_loop() -> None:
    text = "Intro text here. " + "and then it repeats " * 12
    found = run_rule(RepetitionRule(), chars(text))
    assert [(v.severity, v.context["kind"]) for v in found] == [("error", "loop")]


def test_repetition_catches_a_sentence_repeated_three_times() -> None:
    sentence = "The quick brown fox jumps over the lazy dog. "
    text = sentence + "Something else entirely happens next. " + sentence + "More. " + sentence
    found = run_rule(RepetitionRule(), chars(text))
    assert [v.context["kind"] for v in found] == ["sentence"]
    assert found[0].position == text.rindex("The quick")


def test_repetition_ignores_rulers_and_short_sentences() -> None:
    assert run_rule(RepetitionRule(), chars("-" * 300 + "\n" + "=" * 300)) == []
    assert run_rule(RepetitionRule(), chars("Yes. No. Yes. No. Yes. No. Ok.")) == []


def test_repetition_options_and_bounded_state() -> None:
    rule = RepetitionRule(max_sentence_repeats=2, severity="warning")
    found = run_rule(rule, chars("This sentence is long enough. " * 2))
    assert [v.severity for v in found] == ["warning"]
    with pytest.raises(ValueError, match="window"):
        RepetitionRule(window=10)
    rule = RepetitionRule()
    offset = 0
    for i in range(2000):
        piece = f" word{i % 997} and{i % 13}."
        rule.check_delta(piece, offset)
        offset += len(piece)
    assert rule.state_size < 3000  # the window, one sentence and the sentence hashes

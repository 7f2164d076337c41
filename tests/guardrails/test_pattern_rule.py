"""The pattern rule: categories, default severities, options, one report per match."""

from __future__ import annotations

import pytest

from l0_core.guardrails.rules import PatternRule
from l0_core.guardrails.rules.patterns import CATEGORIES, PhraseScanner
from tests.guardrails.helpers import chars, run_rule, split, streamed

EXAMPLES = {
    "meta_commentary": ["As an AI language model, I think so.", "I'm an AI assistant.",
                        "as a language model I can't", "I am just an AI, after all."],
    "refusal": ["I cannot provide that.", "I'm not able to do this.", "I can't assist.",
                "I’m unable to comply.", "I must decline.", "I'm sorry, but I cannot."],
    "instruction_leak": ["[SYSTEM] you are", "text [INST] more [/INST]", "<|im_start|>user",
                         "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>",
                         "<<SYS>> rules <</SYS>>", "[AVAILABLE_TOOLS] x"],
    "placeholders": ["Dear [INSERT NAME],", "Signed, [Your Name]", "See [PLACEHOLDER]",
                     "[TODO: fill in]", "Hello {{user_name}}!", "<PLACEHOLDER>"],
    "hedging": ["Sure! Here you go.", "Certainly, the answer is 4.", "Of course: 4.",
                "Absolutely.", "Great question! It is 4.", "I'd be happy to help.",
                "First line.\n  Sure, more."],
    "format_collapse": ["Here is the code:", "Here's the list:", "Let me explain.",
                        "Below is the table.", "Please find the answer below."],
}
DEFAULTS = {"meta_commentary": "error", "refusal": "error", "instruction_leak": "error",
            "placeholders": "error", "hedging": "warning", "format_collapse": "warning"}

CLEAN = [
    "The capital of France is Paris.",
    "An AI-free answer: as an aide to the mayor, she provided support.",
    "You will be able to provide the details later; the provider can assist.",
    "Make sure the bracketed [x] and {y} and <b>tags</b> are fine.",
    "See [your account](https://example.com) for details.",  # a link, not a placeholder
    "It is certainly true. Let us go. Here the line does not start with the phrase.",
    "The model of the car is new; language is a tool; artificial light.",
    "I can help with that: here is the answer.",
]


@pytest.mark.parametrize(("category", "text"),
                         [(c, t) for c, texts in EXAMPLES.items() for t in texts])
def test_each_category_is_found_with_its_default_severity(category: str, text: str) -> None:
    for pieces in (chars(text), [text], split(text, range(0, len(text), 3))):
        found = run_rule(PatternRule(), pieces)
        assert {(v.context["category"], v.severity) for v in found} == {
            (category, DEFAULTS[category])
        }, (pieces, found)
        assert {v.rule for v in found} == {"pattern"}


def test_defaults_match_the_category_table() -> None:
    assert {name: c.severity for name, c in CATEGORIES.items()} == DEFAULTS


@pytest.mark.parametrize("text", CLEAN)
def test_ordinary_text_passes(text: str) -> None:
    assert run_rule(PatternRule(), chars(text)) == []
    assert run_rule(PatternRule(), [text]) == []


def test_categories_are_selectable() -> None:
    text = "Sure! As an AI, I cannot provide that. [INST]"
    only = run_rule(PatternRule(categories=["refusal"]), chars(text))
    assert [v.context["category"] for v in only] == ["refusal"]
    rest = run_rule(PatternRule(exclude=["meta_commentary", "hedging"]), chars(text))
    assert {v.context["category"] for v in rest} == {"refusal", "instruction_leak"}
    assert PatternRule(categories="HEDGING").categories == ("hedging",)
    assert PatternRule(categories=["instruction-leak"]).categories == ("instruction_leak",)
    with pytest.raises(ValueError, match="unknown category"):
        PatternRule(categories=["rudeness"])


def test_severity_overrides() -> None:
    text = "Sure! I cannot provide that."
    every = run_rule(PatternRule(severity="warning"), chars(text))
    assert {v.severity for v in every} == {"warning"}
    some = run_rule(PatternRule(severity={"hedging": "error", "refusal": "fatal"}),
                    chars(text))
    assert {(v.context["category"], v.severity) for v in some} == {
        ("hedging", "error"), ("refusal", "fatal")}
    assert not run_rule(PatternRule(recoverable=False), ["I must decline."])[0].recoverable


def test_each_match_is_reported_once_and_as_soon_as_it_is_decided() -> None:
    rule = PatternRule()
    text = "Well. As an AI language model, I think. " * 3
    found = streamed(rule, chars(text))
    assert [v.position for v in found] == [6, 46, 86]  # three occurrences, each once
    assert rule.check_complete(text) is None
    # decided one character after the phrase: before the rest of the text arrives
    rule = PatternRule()
    assert streamed(rule, chars("so, as an AI")) == []
    assert [v.position for v in rule.check_delta(",", 12) or []] == [4]


def test_placeholders_are_reported_at_the_end() -> None:
    rule = PatternRule()
    text = "Dear [Your Name], thanks."
    assert streamed(rule, chars(text)) == []  # an error only at completion
    (v,) = rule.check_complete(text) or []
    assert (v.context["category"], v.severity, v.position) == ("placeholders", "error", 5)


def test_a_match_at_the_very_end_is_found_at_completion() -> None:
    rule = PatternRule()
    text = "Fine. I must decline"
    assert streamed(rule, chars(text)) == []
    assert [v.position for v in rule.check_complete(text) or []] == [6]


def test_state_stays_bounded() -> None:
    scanner = PhraseScanner(list(CATEGORIES))
    offset = 0
    sizes = []
    piece = "Plain words, [links](x) and {braces} <b>tags</b> as an aide. I can swim. "
    for i in range(3000):
        scanner.feed(piece, offset)
        offset += len(piece)
        if i in (100, 2999):
            sizes.append(scanner.buffered)
    assert sizes[1] <= sizes[0] + 8
    assert scanner.work < 2 * offset  # the expressions saw each character about once

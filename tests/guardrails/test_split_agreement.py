"""Streaming and the final verdict agree however the text is split into tokens.

For json, markdown, latex and pattern: the set of (rule, severity) from check_delta over
any split followed by check_complete equals the one from a single delta of the whole
text (and so does every position).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from l0_core.guardrails.rules import JsonRule, LatexRule, MarkdownRule, PatternRule
from tests.guardrails.helpers import detail, run_rule, split, verdict

cuts = st.lists(st.integers(0, 100_000), max_size=60)

# texts built from pieces that matter to the rules, so that splits land inside them
JSON_BITS = ['{"', '"a"', ": ", "1", "2.5e-3", "-0", "true", "null", ", ", "[", "]", "{", "}",
             '"s\\"t"', '"\\u00e9"', "\n", " ", "x", ":", ",", '"']
MD_BITS = ["```", "````", "~~~", "\n", "python", " ", "code", "| a ", "|", "|---", ":-:",
           "- item", "# Title", "\\|", "`", "text"]
LATEX_BITS = ["\\begin{", "\\end{", "align}", "eq}", "$", "$$", "\\[", "\\]", "\\(", "\\)",
              "\\frac", "{a}", "\\\\", "\\$", " x ", "\n", "\\beg", "in{b}"]
PATTERN_BITS = ["As an AI", " language model", "I ", "cannot provide", "I'm ", "not able to",
                "unable to", "I must decline", "[INST]", "[/INST]", "<|im_start|>", "<<SYS>>",
                "[Your Name]", "{{name}}", "<PLACEHOLDER>", "\n", "Sure", "Certainly",
                "Let me", "Here is the", " ", ", ", ".", "text", "as an aide", "[your link](x)",
                "provider", "but I can't", "I'm sorry, "]


def texts(bits: list[str]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(bits), max_size=25).map("".join)


def agree(make: Any, text: str, cuts: list[int]) -> None:
    whole = run_rule(make(), [text] if text else [])
    pieces = run_rule(make(), split(text, cuts))
    assert verdict(pieces) == verdict(whole), (text, pieces, whole)
    assert detail(pieces) == detail(whole), (text, pieces, whole)


@settings(max_examples=300, deadline=None)
@given(text=texts(JSON_BITS), cuts=cuts)
def test_json(text: str, cuts: list[int]) -> None:
    agree(JsonRule, text, cuts)
    agree(lambda: JsonRule(require=True), text, cuts)


@settings(max_examples=300, deadline=None)
@given(text=texts(MD_BITS), cuts=cuts)
def test_markdown(text: str, cuts: list[int]) -> None:
    agree(MarkdownRule, text, cuts)


@settings(max_examples=300, deadline=None)
@given(text=texts(LATEX_BITS), cuts=cuts)
def test_latex(text: str, cuts: list[int]) -> None:
    agree(LatexRule, text, cuts)


@settings(max_examples=300, deadline=None)
@given(text=texts(PATTERN_BITS), cuts=cuts)
def test_pattern(text: str, cuts: list[int]) -> None:
    agree(PatternRule, text, cuts)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60), cuts=cuts)
def test_any_text(text: str, cuts: list[int]) -> None:
    for make in (JsonRule, MarkdownRule, LatexRule, PatternRule):
        agree(make, text, cuts)

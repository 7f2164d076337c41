"""The markdown and latex rules."""

from __future__ import annotations

import pytest

from l0_core.guardrails.rules import LatexRule, MarkdownRule
from tests.guardrails.helpers import chars, detail, run_rule, split, streamed


def splits(text: str) -> list[list[str]]:
    return [chars(text), [text], split(text, range(0, len(text), 4)),
            split(text, range(1, len(text), 9))]


def check(rule_cls: type, text: str, **options: object) -> set[tuple[str, str, int | None]]:
    """The violations, which must not depend on how the text is split."""
    results = [detail(run_rule(rule_cls(**options), pieces)) for pieces in splits(text)]
    assert all(r == results[0] for r in results), results
    return results[0]


# -- markdown ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "```python\nprint('hi')\n```\n",
    "~~~\ncode\n~~~",
    "```\nno newline at the end\n```",
    "````markdown\n```python\nx = 1\n```\n````\n",  # a longer fence holds a shorter one
    "~~~~\n~~~\nstill inside\n~~~\n~~~~\n",
    "~~~\n```\nbackticks inside tildes\n```\n~~~\n",
    "```\ncode\n```   \n",  # a closing fence may end in spaces
    "  ```\n  indented fence\n  ```\n",
    "Text with ``` in the middle of a line is not a fence.\n",
    "```js\nconst a = `template`;\n```\n",
    "# Title\n\n- a\n- b\n\n1. one\n2. two\n",
    "",
])
def test_closed_fences_pass(text: str) -> None:
    assert check(MarkdownRule, text) == set()


@pytest.mark.parametrize(("text", "position"), [
    ("Intro\n```python\nprint('hi')\n", 6),
    ("~~~\ncode\n", 0),
    ("````\n```\ninner\n```\n", 0),  # ``` cannot close ````
    ("~~~\ncode\n```\n", 0),  # backticks cannot close tildes
    ("```\ncode\n``` not a close\n", 0),  # a closing fence has nothing after it
    ("ok\n```", 3),  # a fence on the last line opens
])
def test_an_unclosed_fence_is_an_error_at_the_end(text: str, position: int) -> None:
    assert check(MarkdownRule, text) == {("markdown", "error", position)}
    for pieces in splits(text):
        assert streamed(MarkdownRule(), pieces) == []  # only the end can tell


def test_inline_code_with_backticks_at_line_start_is_not_a_fence() -> None:
    assert check(MarkdownRule, "```inline``` code\nmore\n") == set()


def test_tables() -> None:
    good = "| a | b |\n|---|:-:|\n| 1 | 2 |\n| 3 | 4 |\n\nafter\n"
    assert check(MarkdownRule, good) == set()
    assert check(MarkdownRule, "a | b\n--- | ---\n1 | 2\n") == set()
    assert check(MarkdownRule, "| a \\| b | c |\n|---|---|\n| x | y |\n") == set()
    bad = "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |\n| 4 | 5 | 6 |\n"
    assert check(MarkdownRule, bad) == {("markdown", "warning", 30)}  # once per table
    header = "| a | b |\n|---|---|---|\n| 1 | 2 |\n"
    assert check(MarkdownRule, header) == {("markdown", "warning", 10)}
    two = bad + "\ntext\n\n| x |\n|---|\n| 1 | 2 |\n"
    assert len(check(MarkdownRule, two)) == 2
    # a row is reported as soon as it is complete
    rule = MarkdownRule()
    assert streamed(rule, chars(bad[:35])) == []  # "| 3 |" without its newline yet
    assert [v.severity for v in rule.check_delta("\n", 35) or []] == ["warning"]


def test_tables_inside_fences_are_not_checked() -> None:
    assert check(MarkdownRule, "```\n| a | b |\n|---|\n| 1 |\n```\n") == set()


def test_markdown_options() -> None:
    text = "```\n| a | b |\n"
    assert check(MarkdownRule, text, fence_severity="warning") == {("markdown", "warning", 0)}
    bad = "| a | b |\n|---|---|\n| 1 |\n"
    assert check(MarkdownRule, bad, tables=False) == set()
    assert check(MarkdownRule, bad, table_severity="error") == {("markdown", "error", 20)}


# -- latex ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    r"\begin{align} a &= b \\ c &= d \end{align}",
    r"\begin{itemize} \item one \begin{enumerate} \item x \end{enumerate} \end{itemize}",
    r"Inline $x^2$ and display $$\sum_i x_i$$ and \[ \frac{a}{b} \] and \( y \).",
    r"\begin{equation*} e^{i\pi} + 1 = 0 \end{equation*} costs \$5",
    r"A line break \\[2pt] then \frac{1}{2}",
    "It costs $5 and $10 and $3.",  # no LaTeX: dollar signs in prose are not checked
    "Plain prose with no math at all.",
    r"C:\Users\name\Documents",
])
def test_balanced_latex_passes(text: str) -> None:
    assert check(LatexRule, text) == set()


def test_mismatched_and_unexpected_environments_are_reported_while_streaming() -> None:
    text = r"\begin{align} x \end{equation} more"
    assert check(LatexRule, text) == {("latex", "error", 16)}
    for pieces in splits(text):
        assert [v.position for v in streamed(LatexRule(), pieces)] == [16]
    assert check(LatexRule, r"text \end{proof}") == {("latex", "error", 5)}


@pytest.mark.parametrize(("text", "expected"), [
    (r"\begin{theorem} unfinished", {("latex", "error", 0)}),
    (r"$$ \sum_i x_i ", {("latex", "error", 0)}),
    (r"\[ x = 1", {("latex", "error", 8)}),
    (r"\frac{a}{b} \]", {("latex", "error", 12)}),
    (r"\( x", {("latex", "error", 4)}),
    (r"\frac{1}{2} costs $5", {("latex", "warning", 18)}),  # odd inline $: a warning
])
def test_unbalanced_latex_is_reported_at_the_end(
    text: str, expected: set[tuple[str, str, int]]
) -> None:
    assert check(LatexRule, text) == expected
    for pieces in splits(text):
        assert streamed(LatexRule(), pieces) == []


def test_latex_options() -> None:
    assert check(LatexRule, r"\alpha $x", inline_severity="error") == {("latex", "error", 7)}
    assert check(LatexRule, r"\end{x}", severity="warning") == {("latex", "warning", 0)}

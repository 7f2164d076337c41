"""The shortcuts the built-in rules and the drift detector take on long deltas find exactly
what the plain paths find: one character at a time is the reference (it never takes them).

* pattern: a delta of several tokens is probed with ``in`` tests instead of being followed
  on the automaton, and a gated category's keys only where its gate is found;
* markdown: a line is kept until it ends (up to 256 characters) and looked at whole, and
  whole lines inside a delta are skipped unless they have a pipe or start like a fence;
* json: runs of complete members and items are consumed with one expression;
* repetition: short sentences inside a delta are skipped without a call;
* drift: ASCII words come from one ``bytes.translate``; after the first ``window``
  characters only whether a sample has markdown structure is looked at.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l0_core.guardrails import drift_detector
from l0_core.guardrails.drift_detector import DriftDetector
from l0_core.guardrails.rules import JsonRule, MarkdownRule, PatternRule, RepetitionRule
from l0_core.guardrails.rules.patterns import CATEGORIES, PhraseScanner
from tests.guardrails.helpers import chars, detail, run_rule, split
from tests.guardrails.test_drift import BASE
from tests.guardrails.test_split_agreement import MD_BITS, PATTERN_BITS

# piece lengths around the thresholds: a token (<= 16, followed on the automaton), probed
sizes = st.lists(st.sampled_from([1, 2, 5, 15, 16, 17, 30, 48, 64, 65, 120]), min_size=1,
                 max_size=30)


def pieces_of(text: str, lengths: list[int]) -> list[str]:
    out, i, k = [], 0, 0
    while i < len(text):
        n = lengths[k % len(lengths)]
        out.append(text[i : i + n])
        i += n
        k += 1
    return out


def hits(categories: list[str], pieces: list[str]) -> list[tuple[str, int, str]]:
    scanner = PhraseScanner(categories)
    found: list[tuple[str, int, str]] = []
    offset = 0
    for piece in pieces:
        found.extend(scanner.feed(piece, offset) or ())
        offset += len(piece)
    found.extend(scanner.finish() or ())
    return sorted(found)


# -- pattern --------------------------------------------------------------------------------

FILLER = ["plain words here ", "x" * 40, "and some more text, ", "\n", "  ", "[link](x) ",
          "a | b | c\n", "{json: [1, 2]} ", "<b>tag</b> ", "İstanbul İİ "]


@settings(max_examples=300, deadline=None)
@given(bits=st.lists(st.sampled_from(PATTERN_BITS + FILLER), max_size=30), lengths=sizes,
       categories=st.sampled_from([list(CATEGORIES), ["meta_commentary", "hedging",
                                                      "format_collapse"], ["placeholders"]]))
def test_phrases_found_in_any_mix_of_short_and_long_deltas(
    bits: list[str], lengths: list[int], categories: list[str]
) -> None:
    text = "".join(bits)
    reference = hits(categories, chars(text))
    assert hits(categories, pieces_of(text, lengths)) == reference
    assert hits(categories, pieces_of(text, lengths)) == reference  # (memoised now)
    assert hits(categories, [text] if text else []) == reference


REFUSALS = ["I cannot provide that", "I can't assist with it", "I can not help with this",
            "I'm not able to do it", "I am unable to go on", "I must decline, sorry",
            "I’m sorry, but I can’t", "I am afraid but I cannot", "i'm afraid, but i can't"]


@pytest.mark.parametrize("phrase", REFUSALS)
def test_a_refusal_is_found_wherever_long_deltas_cut_it(phrase: str) -> None:
    # the refusal category's keys are looked for only where its gate ("i c", "i am "...) is:
    # the gate may sit in the text before a delta, up to 22 characters before the key's end
    text = "x" * 40 + " " + phrase + " and then some more words to follow."
    reference = hits(["refusal"], chars(text))
    assert [h[0] for h in reference] == ["refusal"]
    for cut in range(1, len(text)):
        for first in (text[:cut], text[max(0, cut - 20) : cut]):
            offset = cut - len(first)
            scanner = PhraseScanner(["refusal"])
            got = list(scanner.feed(text[:offset], 0) or ()) if offset else []
            got.extend(scanner.feed(first, offset) or ())
            got.extend(scanner.feed(text[cut:], cut) or ())
            got.extend(scanner.finish() or ())
            assert sorted(got) == reference, (phrase, cut, len(first))


def test_a_memoised_answer_is_used_only_after_the_same_delta() -> None:
    delta = " AI, I think so, and more"  # a key only with what came before: "as an" + " ai"
    for before, expected in [("x" * 20 + " as an", 1), ("y" * 20 + " as a ", 0),
                             ("x" * 20 + " as an", 1), ("z" * 20 + "s an", 0)]:
        rule = PatternRule(categories=["meta_commentary"])
        found = run_rule(rule, [before, delta])
        assert len(found) == expected, (before, found)


def test_a_key_across_a_short_and_a_long_delta() -> None:
    text = "Some text. <placeholder> and [INSERT NAME] and <|im_end|> then more words here"
    for cut in range(1, len(text)):
        for first in (text[:cut], text[max(0, cut - 3) : cut]):
            offset = cut - len(first)
            scanner = PhraseScanner(["instruction_leak", "placeholders"])
            got = list(scanner.feed(text[:offset], 0) or ()) if offset else []
            got.extend(scanner.feed(first, offset) or ())
            got.extend(scanner.feed(text[cut:], cut) or ())
            got.extend(scanner.finish() or ())
            assert sorted(got) == hits(["instruction_leak", "placeholders"], [text]), cut


# -- markdown -------------------------------------------------------------------------------

LONG = ["x" * 300, "| " + "cell | " * 60 + "\n", "```" + "y" * 300 + "\n", "~" * 3 + "\n",
        "|" + "---|" * 80 + "\n", "a" * 250 + "|", "\\" + "|" * 5]


@settings(max_examples=300, deadline=None)
@given(bits=st.lists(st.sampled_from(MD_BITS + LONG), max_size=25), lengths=sizes)
def test_markdown_lines_long_and_short_whatever_the_deltas(
    bits: list[str], lengths: list[int]
) -> None:
    text = "".join(bits)
    makers: list[Callable[[], MarkdownRule]] = [MarkdownRule, lambda: MarkdownRule(tables=False)]
    for make in makers:
        reference = detail(run_rule(make(), chars(text)))
        assert detail(run_rule(make(), pieces_of(text, lengths))) == reference
        assert detail(run_rule(make(), [text] if text else [])) == reference


def test_a_table_row_longer_than_the_kept_line() -> None:
    header = "| " + " | ".join(f"h{i}" for i in range(80)) + " |\n"
    delim = "|" + "---|" * 80 + "\n"
    short_row = "| " + " | ".join(f"v{i}" for i in range(79)) + " |\n"
    text = header + delim + short_row
    assert len(header) > 256
    for pieces in ([text], chars(text), split(text, range(0, len(text), 50))):
        assert detail(run_rule(MarkdownRule(), pieces)) == {
            ("markdown", "warning", len(header) + len(delim))
        }


# -- json -----------------------------------------------------------------------------------

def documents(seed: int) -> list[str]:
    rng = random.Random(seed)

    def value(depth: int) -> Any:
        kind = rng.random()
        if depth > 2 or kind < 0.6:
            return rng.choice([0, -7, 12.5, -0.25, 3e-7, True, False, None, "", "text",
                               'q"uo\\te', "ünï\n"])
        if kind < 0.8:
            return [value(depth + 1) for _ in range(rng.randint(0, 5))]
        return {f"k{i}": value(depth + 1) for i in range(rng.randint(0, 6))}

    out = []
    for _ in range(40):
        doc = [{f"key{i}": value(1) for i in range(rng.randint(1, 8))}
               for _ in range(rng.randint(1, 4))]
        text = json.dumps(doc, separators=rng.choice([(", ", ": "), (",", ":")]))
        for _ in range(rng.choice([0, 1, 1, 2])):  # an edit or two
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(['"', ",", "]", "}", "1", ".", "-", "e", " ", "x",
                                           ",]", '\\"', "tru", ""]) + text[at + 1 :]
        out.append(text)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_json_runs_find_what_the_character_scanner_finds(seed: int) -> None:
    rng = random.Random(seed)
    makers: list[Callable[[], JsonRule]] = [
        JsonRule, lambda: JsonRule(require=True), lambda: JsonRule(multiple=True)]
    for text in documents(seed):
        for make in makers:
            reference = detail(run_rule(make(), chars(text)))
            assert detail(run_rule(make(), [text])) == reference, text
            cuts = [rng.randrange(len(text) + 1) for _ in range(rng.randint(1, 12))]
            assert detail(run_rule(make(), split(text, cuts))) == reference, (text, cuts)


# -- repetition -----------------------------------------------------------------------------

SENTENCES = ["The quick brown fox jumps over the lazy dog", "No.", "Yes!", "Short one?",
             "Another sentence that is long enough to count", "\n", " ", "ok"]


@settings(max_examples=200, deadline=None)
@given(bits=st.lists(st.sampled_from(SENTENCES), max_size=30), lengths=sizes)
def test_repeated_sentences_whatever_the_deltas(bits: list[str], lengths: list[int]) -> None:
    text = " ".join(bits)

    def sentences(pieces: list[str]) -> set[tuple[str, str, int | None]]:
        found = run_rule(RepetitionRule(window=1000), pieces)
        return detail(v for v in found if v.context.get("kind") == "sentence")

    reference = sentences(chars(text))
    assert sentences(pieces_of(text, lengths)) == reference
    assert sentences([text] if text else []) == reference


# -- drift ----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(max_codepoint=127), max_size=80))
def test_ascii_words_are_the_words_of_the_general_path(text: str) -> None:
    fast = text.encode("ascii").translate(drift_detector._ASCII_WORDS).decode("ascii")
    assert fast.split() == text.lower().translate(drift_detector._WORDS_ONLY).split()


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from(list("\n`*]( ~#-|>+123.ab")), max_size=40))
def test_any_structure_is_a_marker_or_a_line_break(text: str) -> None:
    count = sum(map(text.count, drift_detector._MD_MARKERS)) + text.count("\n")
    quick = "\n" in text or "`" in text or "**" in text or "](" in text or "~~~" in text
    assert (count > 0) == quick


def test_markdown_signal_stops_sampling_when_the_start_was_not_formatted() -> None:
    d = DriftDetector()
    text = BASE  # ordinary prose, no markdown
    for i in range(0, len(text), 50):
        assert d.check_delta(text[i : i + 50], i) is None
    assert d._markdown is False  # (it could never fire: the start had no markers)
    assert len(d._md_recent.items) <= 1  # (a sample or none, from before it stopped)
    formatted = DriftDetector()
    md = "# T\n\n- **a**\n- `b`\n- c\n\n" + ("x" * 40 + " ") * 60
    types: list[str] = []
    for i in range(0, len(md), 50):
        result = formatted.check_delta(md[i : i + 50], i)
        types.extend(result.types if result else ())
    assert "markdown_collapse" in types


def test_the_probe_memo_is_bounded_and_stays_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    from l0_core.guardrails.rules import patterns

    monkeypatch.setattr(patterns._KeyAutomaton, "MEMO_LIMIT", 50)
    rng = random.Random(3)
    words = ["the", "model", "as", "an", "AI", "said", "[INST]", "{{x}}", "ok", "\n"]
    text = " ".join(rng.choice(words) for _ in range(3000))
    pieces = pieces_of(text, [20, 70, 33, 120, 47, 25, 5, 64, 65])
    reference = hits(list(CATEGORIES), chars(text))
    for _ in range(2):  # (the second time through the memo)
        scanner = PhraseScanner(list(CATEGORIES))
        found: list[tuple[str, int, str]] = []
        offset = 0
        for piece in pieces:
            found.extend(scanner.feed(piece, offset) or ())
            offset += len(piece)
            assert scanner._auto is not None and scanner._auto.size <= 50
        found.extend(scanner.finish() or ())
        assert sorted(found) == reference

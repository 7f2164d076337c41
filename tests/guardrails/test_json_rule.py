"""The json and strict_json rules: valid JSON of every shape passes however it is split;
invalid JSON is caught at the first impossible character; the end is checked from state."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from l0_core.guardrails.rules import JsonRule, StrictJsonRule
from tests.guardrails.helpers import chars, detail, run_rule, split, streamed, verdict

VALID = [
    '{"tags": ["a", "b"], "n": 1}',  # the case the old rule rejected
    "{}",
    "[]",
    "[[]]",
    '[[[1, [2, [3]]]], {"a": [{"b": []}]}]',
    '{"s": "braces { } and [brackets] in a string"}',
    '{"q": "escaped \\"quotes\\" and a backslash \\\\ and \\/ slash"}',
    '{"u": "unicode: ünï ☃ \\u00e9 \\uD83D\\uDE00 日本"}',
    '{"e": "escapes \\b\\f\\n\\r\\t"}',
    '{"n": [0, -0, 1, -1, 10, 3.14, -2.5e10, 1E-7, 6.02e+23, 0.5]}',
    '{"lit": [true, false, null]}',
    ' \n\t {\n  "pretty": [\n    1,\n    2\n  ],\n  "x": {"y": null}\n}\n\n',
    '{"": "", "empty key": {}}',
    '[{"id": 1, "name": "a b"}, {"id": 2, "name": "c"}]',
]


def splits(text: str) -> list[list[str]]:
    return [chars(text), split(text, range(0, len(text), 3)), [text],
            split(text, range(0, len(text), 7))]


@pytest.mark.parametrize("text", VALID)
@pytest.mark.parametrize("require", [False, True])
def test_valid_json_passes_token_by_token(text: str, require: bool) -> None:
    assert json.loads(text) is not None or text.strip() == "null"
    for pieces in splits(text):
        assert run_rule(JsonRule(require=require), pieces) == []


@pytest.mark.parametrize(("text", "position", "words"), [
    ('{"a": 1}}', 8, "no open brace"),
    ('{"a": [1, 2}', 11, "'}' closes '['"),
    ('{"a": 1]', 7, "']' closes '{'"),
    ('{"a": 1} {"b": 2}', 9, "second root value"),
    ('{"a": 1}\nThanks!', 9, "after the JSON value"),
    ('[1, 2]]', 6, "no open bracket"),
    ('{"a": 01}', 7, "invalid number"),
    ('{"a": 1.}', 8, "incomplete number"),
    ('{"a": -x}', 7, "incomplete number"),
    ('{"a": tru}', 9, "invalid literal"),
    ('{"a": nul, "b": 1}', 9, "invalid literal"),
    ('{"a" 1}', 5, "expected ':'"),
    ('{"a": 1,}', 8, "trailing comma"),
    ('[1, 2,]', 6, "a value must come first"),
    ('{"a": 1 "b": 2}', 8, "expected ','"),
    ('{a: 1}', 1, "expected a key"),
    ('{"a": "\\q"}', 8, "invalid escape"),
    ('{"a": "\\u12G4"}', 11, "not hex"),
    ('{"a": "line\nbreak"}', 11, "control character"),
    ('[{"a": 1}, {"b": 2}, oops]', 21, "expected a value"),
])
def test_invalid_json_is_caught_at_the_first_impossible_character(
    text: str, position: int, words: str
) -> None:
    starts_like_json = text[:2] in ('{"', "[{", "[[", '["')
    for pieces in splits(text):
        for rule in [JsonRule(require=True), *([JsonRule()] if starts_like_json else [])]:
            found = streamed(rule, pieces)
            assert [(v.severity, v.position) for v in found] == [("error", position)], pieces
            assert words in found[0].message
            assert rule.check_complete(text) is None  # reported once, not again at the end


def test_the_report_comes_with_the_piece_that_has_the_impossible_character() -> None:
    rule = JsonRule()
    assert rule.check_delta('{"a": ', 0) is None
    assert rule.check_delta("1}", 6) is None
    got = rule.check_delta(" }", 8)
    assert got is not None and got[0].position == 9
    assert rule.check_delta(" more", 10) is None  # after an error: quiet


@pytest.mark.parametrize(("text", "words"), [
    ('{"a": "unterminated', "unclosed string"),
    ('{"a": [1, 2', "missing ']}'"),
    ('[{"a": 1}, {"b": ', "missing '}]'"),
    ('{"a": 12', "missing '}'"),
    ('{"a": 1.', "incomplete number"),
    ('{"a": tr', "incomplete literal"),
    ('{"a"', "key without a value"),
    ('{"a":', "missing value"),
    ("{", "missing '}'"),
])
def test_incomplete_json_is_reported_at_the_end(text: str, words: str) -> None:
    for pieces in splits(text):
        rule = JsonRule(require=True)
        assert streamed(rule, pieces) == []
        end = rule.check_complete(text)
        assert end is not None and len(end) == 1
        assert words in end[0].message
        assert (end[0].severity, end[0].position) == ("error", len(text))


@pytest.mark.parametrize("text", [
    "Hello, world.", "[1] Smith et al. showed it.", "{{name}} is a template", "  plain\n",
    "[Note: prose in brackets]", "1. a list", "```json\n{}\n```",
])
def test_auto_mode_leaves_output_that_does_not_start_like_json_alone(text: str) -> None:
    assert run_rule(JsonRule(), chars(text)) == []


def test_require_makes_every_output_json() -> None:
    assert verdict(run_rule(JsonRule(require=True), chars("Hello"))) == {("json", "error")}
    got = run_rule(JsonRule(require=True), chars("42"))
    assert "object or an array" in got[0].message and got[0].position == 0
    assert "no JSON value" in run_rule(JsonRule(require=True), [" \n"])[0].message


def test_multiple_allows_json_lines() -> None:
    lines = '{"a": 1}\n{"b": [2]}\n[3]\n'
    assert run_rule(JsonRule(multiple=True), chars(lines)) == []
    assert run_rule(JsonRule(), chars(lines))[0].position == 9


def test_severity_and_recoverable_options() -> None:
    (v,) = run_rule(JsonRule(severity="fatal", recoverable=False), chars("{}}"))
    assert (v.rule, v.severity, v.recoverable) == ("json", "fatal", False)
    with pytest.raises(ValueError, match="severity"):
        JsonRule(severity="loud")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown option"):
        JsonRule(strictness=3)


def test_check_complete_reuses_the_streamed_state() -> None:
    text = '{"a": [1, 2, {"b": "c"}]'
    rule = JsonRule()
    streamed(rule, chars(text))
    scans: list[str] = []
    original = rule._scan

    def spy(s: str, base: int) -> Any:
        scans.append(s)
        return original(s, base)

    rule._scan = spy  # type: ignore[method-assign]
    got = rule.check_complete(text)
    assert got is not None and "missing '}'" in got[0].message
    assert scans == []  # nothing was scanned again


def test_check_complete_scans_once_when_nothing_was_streamed() -> None:
    rule = JsonRule(streaming=False)
    assert rule.streaming is False
    assert detail(rule.check_complete('{"a": 1}}') or ()) == {("json", "error", 8)}
    assert rule.check_complete('{"a": 1}') is None  # a fresh scan for another text


def test_a_gap_in_the_offsets_means_a_full_scan_at_the_end() -> None:
    rule = JsonRule()
    rule.check_delta('{"a": ', 0)
    assert rule.check_delta("oops", 100) is None  # out of order: not trusted
    assert detail(rule.check_complete('{"a": 1}}') or ()) == {("json", "error", 8)}


def test_create_gives_an_independent_rule_with_the_same_options() -> None:
    rule = JsonRule(require=True, severity="warning")
    rule.check_delta("{", 0)
    fresh = rule.create()
    assert isinstance(fresh, JsonRule) and fresh is not rule
    assert run_rule(fresh, ["42"])[0].severity == "warning"


# -- properties -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)
containers = st.one_of(st.lists(json_values, max_size=4),
                       st.dictionaries(st.text(max_size=5), json_values, max_size=4))
dump_styles = st.sampled_from([
    {}, {"indent": 2}, {"separators": (",", ":")}, {"ensure_ascii": False},
    {"indent": "\t", "ensure_ascii": False},
])
cuts = st.lists(st.integers(0, 10_000), max_size=40)


def strict_loads(text: str) -> Any:
    def no_constants(name: str) -> Any:
        raise ValueError(name)

    return json.loads(text, parse_constant=no_constants)


def is_valid_document(text: str) -> bool:
    try:
        value = strict_loads(text)
    except ValueError:
        return False
    return isinstance(value, dict | list)


@settings(max_examples=200, deadline=None)
@given(value=containers, style=dump_styles, cuts=cuts)
def test_every_valid_document_passes_however_it_is_split(
    value: Any, style: dict[str, Any], cuts: list[int]
) -> None:
    text = json.dumps(value, **style)
    assert run_rule(JsonRule(require=True), split(text, cuts)) == []
    assert run_rule(JsonRule(), split(text, cuts)) == []


@settings(max_examples=300, deadline=None)
@given(value=containers, edit=st.tuples(st.integers(0, 10_000), st.sampled_from(
    ["insert", "delete", "replace", "truncate"]), st.sampled_from(list('{}[]":,0-.e tnx\\'))),
    cuts=cuts)
def test_verdict_agrees_with_a_real_parser_and_does_not_depend_on_the_split(
    value: Any, edit: tuple[int, str, str], cuts: list[int]
) -> None:
    text = json.dumps(value)
    at, how, char = edit
    at %= len(text) + 1
    if how == "insert":
        text = text[:at] + char + text[at:]
    elif how == "delete":
        text = text[:at] + text[at + 1 :]
    elif how == "replace":
        text = text[:at] + char + text[at + 1 :]
    else:
        text = text[:at]
    one = run_rule(JsonRule(require=True), [text] if text else [])
    many = run_rule(JsonRule(require=True), split(text, cuts))
    assert detail(one) == detail(many)
    assert (not one) == is_valid_document(text), (text, one)
    assert len(one) <= 1  # one report per document


def test_strict_json() -> None:
    rule = StrictJsonRule()
    assert rule.streaming is False
    assert rule.check_complete('{"tags": ["a", "b"], "n": 1}') is None
    assert rule.check_complete(" [1, 2]\n") is None
    assert "empty" in (rule.check_complete("  ") or [])[0].message
    assert "does not look like JSON" in (rule.check_complete("Sure: {}") or [])[0].message
    (bad,) = rule.check_complete('{"a": 1,}') or []
    assert bad.position == 7 and "trailing comma" in bad.message
    assert "does not look like JSON" in (rule.check_complete("42") or [])[0].message
    assert StrictJsonRule(severity="warning").check_complete("x")[0].severity == "warning"  # type: ignore[index]


def test_the_shared_memo_is_bounded_and_stays_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    from l0_core.guardrails.rules import json_rule, patterns

    monkeypatch.setattr(json_rule, "_MEMO_LIMIT", 50)
    monkeypatch.setattr(patterns._KeyAutomaton, "MEMO_LIMIT", 50)
    text = json.dumps([{"id": i, "name": f"n{i}", "v": [i, i * 2.5, None]} for i in range(300)])
    pieces = split(text, range(0, len(text), 3))
    assert run_rule(JsonRule(), pieces) == []
    assert sum(map(len, json_rule._MEMO)) <= 50
    assert run_rule(JsonRule(), [*pieces, "}"])[0].position == len(text)
    scanner = patterns.PhraseScanner(["meta_commentary"])
    offset = 0
    for piece in pieces:
        scanner.feed(piece, offset)
        offset += len(piece)
    assert scanner._auto is not None and scanner._auto.size <= 50

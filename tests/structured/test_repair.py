"""``l0.repair_json``: each correction type, valid JSON untouched, properties, adversarial input."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import l0_core as l0
from l0_core.structured_output.repair import Correction

# -- every correction type ----------------------------------------------------------------------

CASES: list[tuple[str, str, list[tuple[str, int]]]] = [
    # (input, repaired text, [(correction type, position)])
    ('```json\n{"a": 1}\n```', '{"a":1}', [("markdown_fence", 0)]),
    ('```json\n{"a": 1}', '{"a":1}', [("markdown_fence", 0)]),  # a fence never closed
    ('Here it is:\n```\n[1]\n```\nEnjoy!', "[1]",
     [("prose_before", 0), ("markdown_fence", 12), ("prose_after", 24)]),
    ('The answer is {"a": 1}.', '{"a":1}', [("prose_before", 0), ("prose_after", 22)]),
    ('{"a": 1} // done', '{"a":1}', [("comment", 9)]),
    ('{"a": /* one */ 1}', '{"a":1}', [("comment", 6)]),
    ('{"url": "http://x.com/a", "c": "/* no */"} // c',
     '{"url":"http://x.com/a","c":"/* no */"}', [("comment", 43)]),
    ('{"a": [1, 2,], }', '{"a":[1,2]}', [("trailing_comma", 11), ("trailing_comma", 13)]),
    ('{"a": 1 "b": 2}', '{"a":1,"b":2}', [("missing_comma", 8)]),
    ('{"a" 1}', '{"a":1}', [("missing_colon", 5)]),
    ("{'a': 'it\\'s \"x\"'}", '{"a":"it\'s \\"x\\""}',
     [("single_quotes", 1), ("single_quotes", 6)]),
    ('{name: "x", $id2: 1}', '{"name":"x","$id2":1}', [("unquoted_key", 1), ("unquoted_key", 12)]),
    ("[True, False, None, NaN, Infinity, -Infinity, undefined]",
     "[true,false,null,null,null,null,null]",
     [("literal", 1), ("literal", 7), ("literal", 14), ("literal", 20), ("literal", 25),
      ("literal", 35), ("literal", 46)]),
    ("[+1, .5, 01, 1.]", "[1,0.5,1,1.0]",
     [("number", 1), ("number", 5), ("number", 9), ("number", 13)]),
    ('{"a": "line 1\nline 2\ttab"}', '{"a":"line 1\\nline 2\\ttab"}',
     [("control_character", 13), ("control_character", 20)]),
    ('{"path": "C:\\dir"}', '{"path":"C:\\\\dir"}', [("invalid_escape", 12)]),
    ('{"a": "hel', '{"a":"hel"}', [("unclosed_string", 6), ("missing_closer", 10)]),
    ('{"a": [1, {"b": 2', '{"a":[1,{}]}',
     [("truncated", 17), ("missing_closer", 17), ("missing_closer", 17),
      ("missing_closer", 17)]),
    ('{"a": [1, 2}', '{"a":[1,2]}', [("missing_closer", 11)]),
    ('[1, 2]]', "[1,2]", [("prose_after", 6)]),
    ('{"a": [1]]}', '{"a":[1]}', [("extra_closer", 9)]),
    ('{"a": 1, "b": tru', '{"a":1}', [("truncated", 17), ("missing_closer", 17)]),
    ('{"a": 1, "b": 12', '{"a":1}', [("truncated", 16), ("missing_closer", 16)]),
    ('{"a": 1, "b', '{"a":1}', [("unclosed_string", 9), ("truncated", 11),
                                 ("missing_closer", 11)]),
    ('[1, 2,', "[1,2]", [("truncated", 6), ("missing_closer", 6)]),
    ('{"a": }', "{}", [("truncated", 6)]),
    # review fixes: a stray closer keeps the comma; a fence inside a string is text; a token
    # that is not a number is kept whole; quotes inside strings; nothing dropped unreported
    ('[1,}2]', '[1,2]',
     [('extra_closer', 3)]),
    ('{"a": 1,]"b": 2}', '{"a":1,"b":2}',
     [('extra_closer', 8)]),
    ('{"a": [1,}, "b": 2}', '{"a":[1]}',
     [('trailing_comma', 8), ('missing_closer', 9), ('prose_after', 10)]),
    ('{,"a":1}', '{"a":1}',
     [('extra_comma', 1)]),
    ('[1,,2]', '[1,2]',
     [('extra_comma', 3)]),
    ('{"a": , "b": 1}', '{"b":1}',
     [('truncated', 6), ('extra_comma', 6)]),
    ('```json\n{"code": "```python\\nprint(1)\\n```", "n": 2}\n```',
     '{"code":"```python\\nprint(1)\\n```","n":2}',
     [('markdown_fence', 0)]),
    ('```json\n{"a": 1}```', '{"a":1}',
     [('markdown_fence', 0)]),
    ('{"price": 1,000, "qty": 3}', '{"price":"1,000","qty":3}',
     [('number_as_string', 10)]),
    ('[0x1F, 1_000, 2024-01-01, 1.2.3]', '["0x1F","1_000","2024-01-01","1.2.3"]',
     [('number_as_string', 1), ('number_as_string', 7), ('number_as_string', 14),
      ('number_as_string', 26)]),
    ('{"a": "He said "hi" to me", "n": 2}', '{"a":"He said \\"hi\\" to me","n":2}',
     [('unescaped_quote', 15), ('unescaped_quote', 18)]),
    ("{'text': 'it's fine', 'n': 2}", '{"text":"it\'s fine","n":2}',
     [('single_quotes', 1), ('single_quotes', 9), ('unescaped_quote', 12), ('single_quotes', 22)]),
    ('[+1e999, -01.5e3]', '[1e999,-1.5e3]',
     [('number', 1), ('number', 9)]),
    ('See [1] for details: {"a": 1}', '{"a":1}',
     [('prose_before', 0)]),
    ('\ufeff{"a": 1}', '{"a":1}',
     [('byte_order_mark', 0)]),
    ('{"a": "\x01\x02\n"}', '{"a":"\\u0001\\u0002\\n"}',
     [('control_character', 7)]),
]


@pytest.mark.parametrize(("given", "text", "fixes"), CASES)
def test_each_correction(given: str, text: str, fixes: list[tuple[str, int]]) -> None:
    repaired = l0.repair_json(given)
    assert repaired.text == text
    assert [(c.type, c.position) for c in repaired.corrections] == fixes
    json.loads(repaired.text)


def test_every_correction_type_is_covered_above() -> None:
    from typing import get_args

    from l0_core.structured_output.repair import CorrectionType

    covered = {kind for _, _, fixes in CASES for kind, _ in fixes}
    assert covered == set(get_args(CorrectionType))


def test_nesting_closed_innermost_first() -> None:
    assert l0.repair_json('{"a": [1, 2').text == '{"a":[1]}'  # 2 may be 23: dropped
    assert l0.repair_json('{"a": [1, 2, {"b": [true').text == '{"a":[1,2,{"b":[true]}]}'
    assert l0.repair_json('[{"a": "x"}, {"b": "y').text == '[{"a":"x"},{"b":"y"}]'


def test_valid_json_is_returned_unchanged() -> None:
    for text in ['{"a": 1}', '  [1, 2 ,3]\n', '"x"', "42", "null", '{"u": "http://x//y"}']:
        repaired = l0.repair_json(text)
        assert repaired.text is text and repaired.corrections == () and not repaired.changed


def test_no_json_is_a_typed_error() -> None:
    for text in ["", "   ", "hello there", "I cannot help with that.", "```\nnothing\n```"]:
        with pytest.raises(l0.JSONRepairError) as info:
            l0.repair_json(text)
        assert isinstance(info.value, l0.StructuredError)
        assert isinstance(info.value, l0.L0Error)


def test_not_a_str_is_a_config_error() -> None:
    with pytest.raises(l0.ConfigError):
        l0.repair_json(b"{}")  # type: ignore[arg-type]


def test_correction_shape() -> None:
    fix = l0.repair_json("[1,]").corrections[0]
    assert fix == Correction("trailing_comma", 2)
    assert fix.to_dict() == {"type": "trailing_comma", "position": 2}
    assert l0.repair_json("{'a': [1,]}").correction_types == ["single_quotes", "trailing_comma"]


# -- properties -----------------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=12) | \
    st.floats(allow_nan=False, allow_infinity=False)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=20,
)
_documents = st.one_of(st.lists(_values, max_size=5),
                       st.dictionaries(st.text(max_size=6), _values, max_size=5))
_FAST = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(st.text(max_size=200))
def test_any_text_gives_json_or_the_typed_error(text: str) -> None:
    try:
        repaired = l0.repair_json(text)
    except l0.JSONRepairError:
        return
    json.loads(repaired.text)


@_FAST
@given(st.text(alphabet='{}[]",:\'\\/*tfn0123456789.-eE \n\tabc', max_size=120))
def test_json_shaped_noise_gives_json_or_the_typed_error(text: str) -> None:
    try:
        repaired = l0.repair_json(text)
    except l0.JSONRepairError:
        return
    json.loads(repaired.text)


@_FAST
@given(_values, st.sampled_from([None, 2]), st.booleans())
def test_valid_json_round_trips_unchanged(value: Any, indent: int | None, ascii_: bool) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_)
    repaired = l0.repair_json(text)
    assert repaired.text is text and repaired.corrections == ()


def consistent(repaired: Any, original: Any) -> bool:
    """``repaired`` holds only what ``original`` holds (the last string may be cut short)."""
    if isinstance(original, dict):
        return isinstance(repaired, dict) and all(
            k in original and consistent(v, original[k]) for k, v in repaired.items())
    if isinstance(original, list):
        return isinstance(repaired, list) and len(repaired) <= len(original) and all(
            consistent(r, o) for r, o in zip(repaired, original, strict=False))
    if isinstance(original, str):
        return isinstance(repaired, str) and original.startswith(repaired)
    return type(repaired) is type(original) and repaired == original


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents, st.sampled_from([None, 1]), st.booleans())
def test_a_document_cut_anywhere_repairs_to_a_consistent_subset(
    value: Any, indent: int | None, ascii_: bool
) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_)
    for cut in range(len(text) + 1):
        try:
            repaired = l0.repair_json(text[:cut])
        except l0.JSONRepairError:
            assert cut == 0 or not text[:cut].strip()
            continue
        parsed = json.loads(repaired.text)
        assert consistent(parsed, value), (text[:cut], repaired.text)
    assert json.loads(l0.repair_json(text).text) == value


# -- adversarial input: linear time, no recursion ------------------------------------------------


# Generous (the machine may be shared): a quadratic scan of these inputs takes minutes.
LIMIT = 10.0


def _timed(text: str) -> tuple[Any, float]:
    t0 = time.perf_counter()
    try:
        result: Any = l0.repair_json(text)
    except l0.JSONRepairError as error:
        result = error
    return result, time.perf_counter() - t0


def test_deep_nesting_valid_and_cut() -> None:
    n = 100_000
    valid = "[" * n + "]" * n
    repaired, took = _timed(valid)
    assert repaired.text is valid and took < LIMIT
    repaired, took = _timed('{"a": [' * n)
    assert repaired.text == '{"a":[' * n + "]}" * n and took < LIMIT
    repaired, took = _timed("[{" * n)  # {{ is no JSON: the first { is closed, the rest dropped
    assert repaired.text == "[{}]" and took < LIMIT


def test_megabyte_strings() -> None:
    body = "x" * 1_000_000
    repaired, took = _timed('{"a": "' + body)
    assert repaired.text == '{"a":"' + body + '"}' and took < LIMIT
    repaired, took = _timed("{'a': '" + body + "'}")
    assert repaired.text == '{"a":"' + body + '"}' and took < LIMIT


@pytest.mark.parametrize("piece", ['"', "'", "[", "]", "{", "}", "\\", ",", ":", "/*", "//",
                                   '"\\', "\n", '{"a":', "[1,", "tru"])
def test_thousands_of_one_piece(piece: str) -> None:
    result, took = _timed(piece * 20_000)
    assert took < LIMIT
    if isinstance(result, l0.JSONRepairError):
        return
    if piece not in ("[", '{"a":', "[1,"):  # (deep: json.loads would recurse too far)
        json.loads(result.text)


# -- review regressions --------------------------------------------------------------------------


def test_mismatched_closers_are_linear() -> None:
    n = 100_000
    repaired, took = _timed("[" * n + "}" * n)
    assert took < LIMIT
    assert repaired.text == "[" * n + "]" * n
    assert [c.type for c in repaired.corrections[:2]] == ["extra_closer", "extra_closer"]


def test_megabyte_of_control_characters_is_one_correction_per_run() -> None:
    repaired, took = _timed('{"a": "' + "\x01" * 1_000_000 + '"}')
    assert took < LIMIT
    assert repaired.text == '{"a":"' + "\\u0001" * 1_000_000 + '"}'
    assert repaired.corrections == (Correction("control_character", 7),)


def test_huge_numbers_are_rewritten_as_text_never_raised() -> None:
    digits = "1" * 5000
    assert l0.repair_json("[+" + digits + "]").text == "[" + digits + "]"
    assert l0.repair_json("[0" + digits + "]").text == "[" + digits + "]"
    assert l0.repair_json("[+1e999]").text == "[1e999]"
    assert l0.repair_json("[1" + "0" * 400 + ".]").text == "[1" + "0" * 400 + ".0]"


def test_complete_keeps_a_number_at_the_end() -> None:
    assert l0.repair_json('{"a":[1,2').text == '{"a":[1]}'  # a prefix: 2 may be 23
    done = l0.repair_json('{"a":[1,2', complete=True)
    assert done.text == '{"a":[1,2]}'
    assert done.corrections == (Correction("missing_closer", 9), Correction("missing_closer", 9))
    assert l0.repair_json('{"a": 1, "b": 1e', complete=True).text == '{"a":1}'


def test_expect_prefers_the_wanted_kind() -> None:
    text = 'See [1] and [2, 3] for {"a": 1}, then [4]'
    assert l0.repair_json(text).text == '{"a":1}'  # the largest
    assert l0.repair_json(text, expect="object").text == '{"a":1}'
    assert l0.repair_json(text, expect="array").text == "[2,3]"
    with pytest.raises(l0.ConfigError, match="expect"):
        l0.repair_json("[1]", expect="list")  # type: ignore[arg-type]


_NOISE = st.lists(st.sampled_from([*'{}[]",:\'\\/*tfnTFNu0123456789.-+eE \n\t`xabc$_#',
    "```", "```json\n", "True", "None", "NaN", "Infinity", "undefined", "\\u", "\\ud83d", "//",
    "/*", "*/"]), max_size=40).map("".join)


def _ints(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _ints(v)]
    if isinstance(value, list):
        return [n for v in value for n in _ints(v)]
    return [value] if type(value) is int else []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_NOISE)
def test_noise_repairs_to_json_and_never_merges_numbers(text: str) -> None:
    try:
        repaired = l0.repair_json(text)
    except l0.JSONRepairError:
        return
    value = json.loads(repaired.text)
    for n in _ints(value):  # every integer was written as such: never two glued together
        assert str(abs(n)) in text, (text, repaired.text)

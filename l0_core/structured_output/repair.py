"""JSON healing: ``repair_json(text)`` turns what a model wrote into JSON, and says how.

Valid JSON is returned unchanged after one parse in Rust (``pydantic_core.from_json``).
Everything else goes through one linear scanner with an explicit stack (no recursion,
so 100 000 levels of nesting are fine): string bodies, whitespace and comments are
skipped with one regular-expression step each, so the Python work is per token, not per
character.

What it repairs, each reported as a :class:`Correction` (``type``, ``position`` in the
input):

=====================  ==============================================================
``markdown_fence``     a ```` ```json ```` fence around the JSON (closed or not)
``prose_before``       text before the JSON (the first ``{``/``[`` that starts JSON)
``prose_after``        text after the complete JSON value
``comment``            ``// ...`` and ``/* ... */`` outside strings
``trailing_comma``     ``,`` before ``}`` or ``]``
``missing_comma``      ``{"a": 1 "b": 2}``
``missing_colon``      ``{"a" 1}``
``single_quotes``      ``'...'`` strings and keys
``unquoted_key``       ``{name: "x"}``
``literal``            ``True``, ``False``, ``None``, ``NaN``, ``Infinity``, ``undefined``
``number``             ``+1``, ``.5``, ``01``, ``1.`` (normalised as text: ``1e999`` stays)
``number_as_string``   a token that starts like a number but is none (``0x1F``,
                       ``2024-01-01``, ``1.2.3``, ``1_000``; in an object, ``1,000``) is
                       kept whole as a string, never cut into a smaller number
``unescaped_quote``    a ``"`` inside a value string (``"He said "hi" to me"``), or an
                       apostrophe inside a single-quoted one (``'it's'``), kept as text: a
                       quote ends a string only where ``,`` ``}`` ``]`` ``:`` a quote or
                       the end follows it, unless no later quote of the string does
``extra_comma``        a ``,`` where no member precedes it (``[1,,2]``, ``{,"a": 1}``)
``byte_order_mark``    a ``\ufeff`` before the JSON
``control_character``  a raw newline, tab or other control character inside a string
``invalid_escape``     ``"C:\\path"``: a backslash that escapes nothing is kept as text
``unclosed_string``    a string cut by the end of the text (its text is kept)
``missing_closer``     ``}`` / ``]`` added, innermost first
``extra_closer``       a ``}`` / ``]`` that closes nothing
``truncated``          an incomplete member at the end (a key without value, a cut number
                       or literal, a dangling comma) is dropped, never invented
=====================  ==============================================================

Nothing is dropped silently: text after the value, whatever stopped the scan, is reported
as ``prose_after``.

A cut document stays a *prefix-consistent subset* of the whole one: the repaired value
holds only members that were complete, plus at most the start of the last string. A
number touching the end of the text is dropped (``12`` may be the start of ``1234``),
unless ``complete=True`` says the text is all there is (then ``{"a": [1, 2`` gives
``{"a":[1,2]}``).

Text with no JSON value at all raises :class:`~l0_core.structured_output.errors.JSONRepairError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_core import from_json

from l0_core.errors import ConfigError
from l0_core.structured_output.errors import JSONRepairError

__all__ = ["Correction", "CorrectionType", "Repaired", "repair_json"]

CorrectionType = Literal[
    "markdown_fence", "prose_before", "prose_after", "comment", "trailing_comma",
    "missing_comma", "missing_colon", "single_quotes", "unquoted_key", "literal", "number",
    "control_character", "invalid_escape", "unclosed_string", "missing_closer",
    "extra_closer", "truncated", "number_as_string", "unescaped_quote", "extra_comma",
    "byte_order_mark",
]


@dataclass(frozen=True, slots=True)
class Correction:
    """One repair: its ``type`` and the ``position`` (index into the input) it applies to."""

    type: CorrectionType
    position: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "position": self.position}


@dataclass(frozen=True, slots=True)
class Repaired:
    """What :func:`repair_json` returns: the JSON ``text`` and the ``corrections`` made."""

    text: str
    corrections: tuple[Correction, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.corrections)

    @property
    def correction_types(self) -> list[str]:
        """The distinct correction types, in the order they first occur."""
        return list(dict.fromkeys(c.type for c in self.corrections))


def repair_json(
    text: str, *, complete: bool = False, expect: Literal["object", "array"] | None = None
) -> Repaired:
    """Repair ``text`` into JSON (see the module documentation).

    Valid JSON comes back unchanged with no corrections. ``complete=True``: the text is
    not a cut prefix, so a number at its very end is kept. ``expect``: where prose holds
    several candidate values, prefer an object (or an array); otherwise the largest. Raises
    :class:`JSONRepairError` when the text holds no JSON value at all.
    """
    if not isinstance(text, str):
        raise ConfigError(f"repair_json takes a str, not a {type(text).__name__}")
    if expect not in (None, "object", "array"):
        raise ConfigError(f"repair_json: expect must be 'object', 'array' or None, not {expect!r}")
    try:
        from_json(text, allow_inf_nan=False)
    except ValueError:
        pass
    else:
        if "\ufeff" not in text[:_WS.match(text).end()]:  # type: ignore[union-attr]
            return Repaired(text)
    kind = None if expect is None else ("{" if expect == "object" else "[")
    return _repair(text, complete, kind)


# -- the scanner ------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\r\n\ufeff]*")
_SKIPPABLE = frozenset(" \t\r\n\ufeff/")
_DQ_RUN = re.compile(r'[^"\\\x00-\x1f]*')
_SQ_RUN = re.compile(r"[^'\"\\\x00-\x1f]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LOOSE_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_TAIL = re.compile(r"[\w.+-]*")
_WORD = re.compile(r"[A-Za-z_$][\w$]*")
_KEY_WORD = re.compile(r"[A-Za-z_$][\w$-]*")
_FENCE = re.compile(r"```[ \t]*[\w+.-]*[ \t]*\r?\n?")
_OPENERS = re.compile(r"[{\[]")
_CUT_ESCAPE = re.compile(r"(?:\\(?:u[0-9a-fA-F]{0,3})?)?")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_LITERALS = {"true": "true", "false": "false", "null": "null", "True": "true",
             "False": "false", "None": "null", "NaN": "null", "Infinity": "null",
             "undefined": "null"}
_ESCAPES = frozenset('"\\/bfnrt')
_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_VALUE_START = frozenset('{["\'-+.0123456789')
_LOOSE_PARTS = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?([eE][+-]?\d+)?")
_THOUSANDS = re.compile(r"(?:,\d{3})+(?:\.\d+)?(?![\w.])")
_CTRL_RUN = re.compile(r"[\x00-\x1f]+")
_CTRL_TABLE = {i: _CONTROL.get(chr(i)) or f"\\u{i:04x}" for i in range(32)}
_CLOSES_AFTER = frozenset(',}]:`')
_FENCE_LINE = re.compile(r"^[ \t]*```", re.MULTILINE)
_MAX_CANDIDATES = 16  # where prose precedes the JSON: starts tried (bounded: linear time)

# scanner states: what comes next
_VALUE, _KEY, _COLON, _OVALUE, _AFTER = range(5)


class _Scanner:
    """One pass over ``s[start:end]`` from a value start; ``out`` is the repaired text."""

    __slots__ = ("close_at", "comma", "complete", "counts", "cut", "done", "end", "first",
                 "fixes", "i", "no_close", "out", "s", "stack", "start", "state")

    def __init__(self, s: str, start: int, end: int, complete: bool = False) -> None:
        self.s = s
        self.complete = complete
        self.counts = {"}": 0, "]": 0}  # open containers of each kind (stray closers: O(1))
        self.close_at = -1  # a quote known to end the string being read (see closes())
        self.no_close = end + 1  # from here on no quote is followed by a structural char
        self.i = self.start = start
        self.end = end
        self.out: list[str] = []
        self.fixes: list[Correction] = []
        self.stack: list[list[Any]] = []  # [closer, mark]: mark = len(out) after the last member
        self.state = _VALUE
        self.first = False  # the innermost container was just opened
        self.comma = -1  # position of a comma read but not yet written (it may be trailing)
        self.cut = False  # a number or literal was cut by the end of the text
        self.done = False

    def fix(self, kind: CorrectionType, at: int) -> None:
        self.fixes.append(Correction(kind, at))

    def run(self) -> bool:
        """Scan; ``False`` when an unexpected character stopped it (the rest is dropped)."""
        step = {_VALUE: self.value, _OVALUE: self.value, _KEY: self.key, _COLON: self.colon,
                _AFTER: self.after}
        while not self.done:
            self.skip()
            if self.i >= self.end:
                self.finish(self.end)
                return True
            if not step[self.state](self.s[self.i]):
                self.finish(self.i)
                return False
        return True

    def skip(self) -> None:
        """Whitespace and comments."""
        s, end, i = self.s, self.end, self.i
        if i < end and s[i] not in _SKIPPABLE:
            return
        i = _WS.match(s, i, end).end()  # type: ignore[union-attr]
        while i + 1 < end and s[i] == "/" and s[i + 1] in "/*":
            self.fix("comment", i)
            if s[i + 1] == "/":
                j = s.find("\n", i, end)
            else:
                j = s.find("*/", i + 2, end)
                j = -1 if j == -1 else j + 2
            i = end if j == -1 else j
            i = _WS.match(s, i, end).end()  # type: ignore[union-attr]
        self.i = i

    # -- states ------------------------------------------------------------------------------

    def value(self, c: str) -> bool:
        if c == ",":
            if self.state == _OVALUE:  # "key": , - the member has no value
                self.drop_member(self.i)
                return True
            return self.extra_comma()
        if c in "}]":
            if self.state == _OVALUE:  # "key": } - the member has no value
                self.drop_member(self.i)
                return self.close(c)
            if self.stack and (self.first or self.comma >= 0):
                return self.close(c)
            return False
        self.write_comma()
        if c == "{":
            return self.open("{", "}", _KEY)
        if c == "[":
            return self.open("[", "]", _VALUE)
        if c == '"' or c == "'":
            self.string(c)
            self.completed()  # (a string cut by the end is kept: see unclosed_string)
            return True
        if c in "-+.0123456789":
            return self.number()
        return self.word()

    def key(self, c: str) -> bool:
        if c in "}]":
            return self.close(c)
        if c == ",":
            return self.extra_comma()
        if c == '"' or c == "'":
            self.write_comma()
            if self.string(c, key=True):
                self.state = _COLON
            else:
                self.cut = True  # a key cut by the end: the member is dropped
            return True
        m = _KEY_WORD.match(self.s, self.i, self.end)
        if m is None:
            return False
        self.write_comma()
        self.fix("unquoted_key", self.i)
        self.out.append(f'"{m.group()}"')
        self.i = m.end()
        self.state = _COLON
        return True

    def colon(self, c: str) -> bool:
        if c == ":":
            self.out.append(":")
            self.i += 1
            self.state = _OVALUE
            return True
        if c in _VALUE_START or c.isalpha():
            self.fix("missing_colon", self.i)
            self.out.append(":")
            self.state = _OVALUE
            return True
        if c in "}]":
            self.drop_member(self.i)
            return self.close(c)
        return False

    def after(self, c: str) -> bool:
        if c == ",":
            self.comma = self.i
            self.i += 1
            self.state = _KEY if self.stack[-1][0] == "}" else _VALUE
            self.first = False
            return True
        if c in "}]":
            return self.close(c)
        in_object = self.stack[-1][0] == "}"
        if c in _VALUE_START or c.isalpha() or (in_object and _KEY_WORD.match(c)):
            self.fix("missing_comma", self.i)
            self.comma = self.i
            self.state = _KEY if in_object else _VALUE
            self.first = False
            return True
        return False

    # -- containers ----------------------------------------------------------------------------

    def extra_comma(self) -> bool:
        """A comma with no member before it: dropped."""
        if not self.stack:
            return False
        self.fix("extra_comma", self.i)
        self.i += 1
        return True

    def open(self, bracket: str, closer: str, state: int) -> bool:
        self.out.append(bracket)
        self.stack.append([closer, len(self.out)])
        self.counts[closer] += 1
        self.i += 1
        self.state = state
        self.first = True
        return True

    def close(self, c: str) -> bool:
        stack = self.stack
        if not stack:
            return False
        if c != stack[-1][0] and not self.counts[c]:
            self.fix("extra_closer", self.i)  # closes nothing: dropped, the rest as it was
            self.i += 1
            return True
        if self.comma >= 0:
            self.fix("trailing_comma", self.comma)
            self.comma = -1
        if c != stack[-1][0]:
            self.fix("missing_closer", self.i)  # an inner container left open: close it first
            self.out.append(self.pop())
            self.completed()
            return True
        self.out.append(c)
        self.pop()
        self.i += 1
        self.completed()
        return True

    def pop(self) -> str:
        closer: str = self.stack.pop()[0]
        self.counts[closer] -= 1
        return closer

    def completed(self) -> None:
        """A value ended: it completes the member of the container around it."""
        self.first = False
        if not self.stack:
            self.done = True
            return
        self.stack[-1][1] = len(self.out)
        self.state = _AFTER

    def write_comma(self) -> None:
        if self.comma >= 0:
            self.out.append(",")
            self.comma = -1

    def drop_member(self, at: int) -> None:
        """Forget the member being read (back to the end of the last complete one)."""
        self.fix("truncated", at)
        del self.out[self.stack[-1][1]:]
        self.state = _AFTER if not self.first else _KEY
        self.comma = -1

    def finish(self, at: int) -> None:
        """The end (or an unexpected character): drop the incomplete member, close the rest."""
        stack = self.stack
        if not stack:
            return
        mid_member = self.state != _AFTER and not (self.first and self.state in (_KEY, _VALUE))
        if mid_member or self.comma >= 0 or self.cut:
            self.fix("truncated", at)
            del self.out[stack[-1][1]:]
        self.comma = -1
        while stack:
            self.fix("missing_closer", at)
            self.out.append(self.pop())
        self.done = True

    # -- scalars -----------------------------------------------------------------------------

    def string(self, quote: str, key: bool = False) -> bool:
        """A string from ``self.i`` (its opening quote); ``False`` if the text ended in it."""
        s, end, out = self.s, self.end, self.out
        start = self.i
        if quote == "'":
            self.fix("single_quotes", start)
        run = _DQ_RUN if quote == '"' else _SQ_RUN
        out.append('"')
        i = start + 1
        while True:
            j = run.match(s, i, end).end()  # type: ignore[union-attr]
            if j > i:
                out.append(s[i:j])
                i = j
            if i >= end:
                self.fix("unclosed_string", start)
                out.append('"')
                self.i = i
                return False
            c = s[i]
            if c == quote:
                if key or self.closes(i, quote):
                    out.append('"')
                    self.i = i + 1
                    return True
                self.fix("unescaped_quote", i)
                out.append('\\"' if c == '"' else c)
                i += 1
            elif c == "\\":
                i = self.escape(i)
            elif c == '"':  # inside a single-quoted string
                out.append('\\"')
                i += 1
            else:
                j = _CTRL_RUN.match(s, i, end).end()  # type: ignore[union-attr]
                self.fix("control_character", i)
                out.append(s[i:j].translate(_CTRL_TABLE))
                i = j

    def closes(self, i: int, quote: str) -> bool:
        """Whether the quote at ``s[i]`` ends the value string it is in: yes if what follows
        it can follow a value, else only if no later quote of the kind does (then it is a
        quote inside the text: ``"He said "hi" to me"``). Each stretch of text is looked
        ahead at most once (``close_at``/``no_close``): linear time."""
        if self._closing(i, quote) or i == self.close_at or i >= self.no_close:
            return True
        if i < self.close_at:
            return False
        s, end = self.s, self.end
        q = s.find(quote, i + 1, end)
        while q != -1:
            if not _escaped(s, q) and self._closing(q, quote):
                self.close_at = q
                return False
            q = s.find(quote, q + 1, end)
        self.no_close = i
        return True

    def _closing(self, i: int, quote: str) -> bool:
        s, end = self.s, self.end
        j = i + 1
        if j < end and s[j] in _CLOSES_AFTER:  # the usual case: no whitespace between
            return True
        j = _WS.match(s, j, end).end()  # type: ignore[union-attr]
        if j >= end:
            return True
        c = s[j]
        return c in _CLOSES_AFTER or c == quote or (c == "/" and s.startswith(("//", "/*"), j))

    def escape(self, i: int) -> int:
        """The escape at ``s[i] == '\\'``; returns where the string goes on."""
        s, end, out = self.s, self.end, self.out
        if i + 1 >= end:
            return end  # a backslash cut by the end: dropped
        n = s[i + 1]
        if n in _ESCAPES:
            out.append(s[i:i + 2])
            return i + 2
        if n == "'":
            out.append("'")
            return i + 2
        if n == "u":
            if _HEX4.match(s, i + 2, end):
                code = int(s[i + 2:i + 6], 16)
                if 0xD800 <= code <= 0xDBFF and _CUT_ESCAPE.fullmatch(s, i + 6, end):
                    return end  # half a surrogate pair cut by the end: dropped
                out.append(s[i:i + 6])
                return i + 6
            if i + 6 > end and re.fullmatch(r"[0-9a-fA-F]*", s[i + 2:end]):
                return end  # \\u12 cut by the end: dropped
        self.fix("invalid_escape", i)
        out.append("\\\\")
        return i + 1

    def number(self) -> bool:
        s, i, end = self.s, self.i, self.end
        m = _LOOSE_NUMBER.match(s, i, end)
        if m is None:
            if s.startswith("-Infinity", i):
                self.fix("literal", i)
                self.out.append("null")
                self.i = i + 9
                self.completed()
                return True
            if "-Infinity".startswith(s[i:end]):
                self.i, self.cut = end, True  # cut by the end: an incomplete member
                return True
            return False
        tail = _NUMBER_TAIL.match(s, m.end(), end).end()  # type: ignore[union-attr]
        if tail >= end and (not self.complete or tail > m.end()):
            self.i, self.cut = end, True  # "12", "1e" at the end may go on: incomplete
            return True
        if self.state == _OVALUE and tail == m.end():
            more = _THOUSANDS.match(s, tail, end)  # {"price": 1,000}
            if more is not None and more.end() < end:
                tail = more.end()
        if tail > m.end():  # 0x1F, 2024-01-01, 1.2.3: not a number, kept whole as text
            self.fix("number_as_string", i)
            self.out.append(f'"{s[i:tail]}"')
            self.i = tail
        else:
            text = m.group()
            if _NUMBER.fullmatch(text):
                self.out.append(text)
            else:
                self.fix("number", i)
                self.out.append(_normal_number(text))
            self.i = m.end()
        self.completed()
        return True

    def word(self) -> bool:
        s, i, end = self.s, self.i, self.end
        m = _WORD.match(s, i, end)
        if m is None:
            return False
        word = m.group()
        literal = _LITERALS.get(word)
        if m.end() >= end and any(k != word and k.startswith(word) for k in _LITERALS):
            self.i, self.cut = end, True  # cut by the end ("tru", "Non"): incomplete
            return True
        if literal is None:
            return False
        if literal != word:
            self.fix("literal", i)
        self.out.append(literal)
        self.i = m.end()
        self.completed()
        return True


def _escaped(s: str, q: int) -> bool:
    """Whether the character at ``s[q]`` follows an odd run of backslashes."""
    j = q
    while j > 0 and s[j - 1] == "\\":
        j -= 1
    return (q - j) % 2 == 1


def _normal_number(text: str) -> str:
    """A loose number (``+1``, ``.5``, ``01``, ``1.``) as JSON, rewritten as text: no float
    round trip (``1e999`` stays, 5 000 digits stay)."""
    m = _LOOSE_PARTS.fullmatch(text)
    assert m is not None
    sign, whole, frac, exp = m.groups()
    out = ("-" if sign == "-" else "") + (whole.lstrip("0") or "0")
    if frac is not None:
        out += "." + (frac or "0")
    return out + (exp or "")


# -- where the JSON is ------------------------------------------------------------------------


def _region(s: str) -> tuple[int, int, list[Correction], bool]:
    """The part of ``s`` that holds the JSON: inside a markdown fence, if there is one.
    The closing fence is one at the start of a line (a fence inside a string is text);
    without one, the value's own end decides (``fenced``: a fence may follow it)."""
    fixes: list[Correction] = []
    i = _WS.match(s).end()  # type: ignore[union-attr]
    if "\ufeff" in s[:i]:
        fixes.append(Correction("byte_order_mark", s.index("\ufeff")))
    if i < len(s) and s[i] in "{[\"'":
        return i, len(s), fixes, False
    fence = s.find("```", i)
    if fence == -1:
        return i, len(s), fixes, False
    if fence > i:
        fixes.append(Correction("prose_before", i))
    fixes.append(Correction("markdown_fence", fence))
    start = _FENCE.match(s, fence).end()  # type: ignore[union-attr]
    line = _FENCE_LINE.search(s, start)
    if line is None:
        return start, len(s), fixes, True
    close = line.end() - 3
    after = _WS.match(s, close + 3).end()  # type: ignore[union-attr]
    if after < len(s):
        fixes.append(Correction("prose_after", after))
    return start, close, fixes, False


def _candidates(s: str, start: int, end: int) -> list[int]:
    """Where the JSON may start: here if the text starts like a value, else each ``{``/``[``."""
    i = _WS.match(s, start, end).end()  # type: ignore[union-attr]
    if i < end:
        if s[i] in "{[\"'":
            return [i]
        scalar = _LOOSE_NUMBER.match(s, i, end) or _WORD.match(s, i, end)
        if scalar is not None and _WS.match(s, scalar.end(), end).end() == end:  # type: ignore[union-attr]
            return [i]  # a scalar alone
    found: list[int] = []
    for m in _OPENERS.finditer(s, start, end):
        found.append(m.start())
        if len(found) == _MAX_CANDIDATES:
            break
    return found


def _better(new: _Scanner, ok: bool, best: _Scanner | None, best_ok: bool,
            kind: str | None) -> bool:
    """Whether ``new`` is a better reading of the text than ``best``: a complete value of
    the wanted ``kind`` (``"{"``/``"["``) first, then a complete one, then the longest."""
    if best is None:
        return True
    rank_new = (kind is not None and new.s[new.start] == kind, ok, new.i - new.start)
    rank_best = (kind is not None and best.s[best.start] == kind, best_ok, best.i - best.start)
    return rank_new > rank_best


def _repair(s: str, complete: bool = False, kind: str | None = None) -> Repaired:
    start, end, fixes, fenced = _region(s)
    best: _Scanner | None = None
    best_ok = False
    for at in _candidates(s, start, end):
        if best_ok and best is not None and at < best.i:
            continue  # inside a value already read whole: a part of it is never better
        scanner = _Scanner(s, at, end, complete)
        ok = scanner.run()
        if not scanner.out:
            continue
        if _better(scanner, ok, best, best_ok, kind):
            best, best_ok = scanner, ok
        if ok and (kind is None or s[at] == kind) and _rest_is_prose(scanner):
            break
    if best is None:
        raise JSONRepairError("the text holds no JSON value", metadata={"length": len(s)})
    head = list(fixes)
    lead = _WS.match(s, start, end).end()  # type: ignore[union-attr]
    if best.start > lead:
        head.append(Correction("prose_before", lead))
    if best.i < end:  # the value ended before the text did: what is left is reported
        best.skip()
        if fenced and s.startswith("```", best.i):
            best.i = _WS.match(s, best.i + 3, end).end()  # type: ignore[union-attr]
        if best.i < end:
            best.fix("prose_after", best.i)
    corrections = tuple(head + best.fixes)
    if not corrections:
        return Repaired(s)
    return Repaired("".join(best.out), corrections)


def _rest_is_prose(scanner: _Scanner) -> bool:
    """Whether no ``{``/``[`` follows the value (so no later candidate could be larger)."""
    return _OPENERS.search(scanner.s, scanner.i, scanner.end) is None

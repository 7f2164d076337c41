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
``number``             ``+1``, ``.5``, ``01``, ``1.``
``control_character``  a raw newline, tab or other control character inside a string
``invalid_escape``     ``"C:\\path"``: a backslash that escapes nothing is kept as text
``unclosed_string``    a string cut by the end of the text (its text is kept)
``missing_closer``     ``}`` / ``]`` added, innermost first
``extra_closer``       a ``}`` / ``]`` that closes nothing
``truncated``          an incomplete member at the end (a key without value, a cut number
                       or literal, a dangling comma) is dropped, never invented
=====================  ==============================================================

A cut document stays a *prefix-consistent subset* of the whole one: the repaired value
holds only members that were complete, plus at most the start of the last string. A
number touching the end of the text is dropped (``12`` may be the start of ``1234``).

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
    "extra_closer", "truncated",
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


def repair_json(text: str) -> Repaired:
    """Repair ``text`` into JSON (see the module documentation).

    Valid JSON comes back unchanged with no corrections. Raises
    :class:`JSONRepairError` when the text holds no JSON value at all.
    """
    if not isinstance(text, str):
        raise ConfigError(f"repair_json takes a str, not a {type(text).__name__}")
    try:
        from_json(text, allow_inf_nan=False)
    except ValueError:
        pass
    else:
        return Repaired(text)
    return _repair(text)


# -- the scanner ------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\r\n\ufeff]*")
_SKIPPABLE = frozenset(" \t\r\n\ufeff/")
_DQ_RUN = re.compile(r'[^"\\\x00-\x1f]*')
_SQ_RUN = re.compile(r"[^'\"\\\x00-\x1f]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LOOSE_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_TAIL = re.compile(r"[\w.+-]*")
_WORD = re.compile(r"[A-Za-z_$][\w$]*")
_KEY_WORD = re.compile(r"[A-Za-z0-9_$][\w$-]*")
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
_MAX_CANDIDATES = 16  # where prose precedes the JSON: starts tried (bounded: linear time)

# scanner states: what comes next
_VALUE, _KEY, _COLON, _OVALUE, _AFTER = range(5)


class _Scanner:
    """One pass over ``s[start:end]`` from a value start; ``out`` is the repaired text."""

    __slots__ = ("comma", "cut", "done", "end", "first", "fixes", "i", "out", "s", "stack",
                 "start", "state")

    def __init__(self, s: str, start: int, end: int) -> None:
        self.s = s
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
        if c == '"' or c == "'":
            self.write_comma()
            if self.string(c):
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

    def open(self, bracket: str, closer: str, state: int) -> bool:
        self.out.append(bracket)
        self.stack.append([closer, len(self.out)])
        self.i += 1
        self.state = state
        self.first = True
        return True

    def close(self, c: str) -> bool:
        stack = self.stack
        if not stack:
            return False
        if self.comma >= 0:
            self.fix("trailing_comma", self.comma)
            self.comma = -1
        if c != stack[-1][0]:
            if not any(entry[0] == c for entry in stack):
                self.fix("extra_closer", self.i)  # closes nothing: dropped
                self.i += 1
                return True
            self.fix("missing_closer", self.i)  # an inner container left open: close it first
            self.out.append(stack.pop()[0])
            self.completed()
            return True
        self.out.append(c)
        stack.pop()
        self.i += 1
        self.completed()
        return True

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
            self.out.append(stack.pop()[0])
        self.done = True

    # -- scalars -----------------------------------------------------------------------------

    def string(self, quote: str) -> bool:
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
                out.append('"')
                self.i = i + 1
                return True
            if c == "\\":
                i = self.escape(i)
            elif c == '"':  # inside a single-quoted string
                out.append('\\"')
                i += 1
            else:
                self.fix("control_character", i)
                out.append(_CONTROL.get(c) or f"\\u{ord(c):04x}")
                i += 1

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
        if _NUMBER_TAIL.match(s, m.end(), end).end() >= end:  # type: ignore[union-attr]
            self.i, self.cut = end, True  # "12", "1e" at the end may go on: incomplete
            return True
        text = m.group()
        if _NUMBER.fullmatch(text):
            self.out.append(text)
        else:
            self.fix("number", i)
            plain = "." not in text and "e" not in text.lower()
            self.out.append(str(int(text)) if plain else repr(float(text)))
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


# -- where the JSON is ------------------------------------------------------------------------


def _region(s: str) -> tuple[int, int, list[Correction]]:
    """The part of ``s`` that holds the JSON: inside a markdown fence, if there is one."""
    fixes: list[Correction] = []
    i = _WS.match(s).end()  # type: ignore[union-attr]
    if i < len(s) and s[i] in "{[\"'":
        return i, len(s), fixes
    fence = s.find("```", i)
    if fence == -1:
        return i, len(s), fixes
    if fence > i:
        fixes.append(Correction("prose_before", i))
    fixes.append(Correction("markdown_fence", fence))
    start = _FENCE.match(s, fence).end()  # type: ignore[union-attr]
    close = s.find("```", start)
    if close == -1:
        return start, len(s), fixes
    after = _WS.match(s, close + 3).end()  # type: ignore[union-attr]
    if after < len(s):
        fixes.append(Correction("prose_after", after))
    return start, close, fixes


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


def _repair(s: str) -> Repaired:
    start, end, fixes = _region(s)
    best: _Scanner | None = None
    for at in _candidates(s, start, end):
        scanner = _Scanner(s, at, end)
        ok = scanner.run()
        if not scanner.out:
            continue
        if best is None or ok:
            best = scanner
        if ok:
            break
    if best is None:
        raise JSONRepairError("the text holds no JSON value", metadata={"length": len(s)})
    head = list(fixes)
    lead = _WS.match(s, start, end).end()  # type: ignore[union-attr]
    if best.start > lead:
        head.append(Correction("prose_before", lead))
    if best.i < end:  # the value ended before the text did
        best.skip()
        if best.i < end and not (best.fixes and best.fixes[-1].type == "missing_closer"):
            best.fix("prose_after", best.i)
    corrections = tuple(head + best.fixes)
    if not corrections:
        return Repaired(s)
    return Repaired("".join(best.out), corrections)

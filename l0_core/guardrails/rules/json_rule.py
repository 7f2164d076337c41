"""The ``json`` and ``strict_json`` rules.

``json`` validates JSON while it streams: a complete grammar check (strings and
escapes, numbers, literals, commas, colons, brackets), character by character
over a small carried state (the mode, the stack of open brackets, the partial
number or literal), so an impossible character is reported where it occurs -
a ``}`` with no open brace, a ``]`` closing a ``{``, a second root value, text
after the root. String bodies, whitespace and digit runs are skipped with one
regular-expression step each, and so are runs of complete members of an object
(``, "key": value``) or items of an array (``, value``) whose values are strings,
numbers or literals, with a ``,`` or ``"key":`` after them: what such a run
holds cannot be an error. So the Python work is per container and per token
cut by the end of a delta, not per character.
At the end only the carried state is looked at: an unclosed string, missing
closers, a cut number.

By default the rule only acts on output that *starts like JSON* - ``{"``,
``{}``, ``[{``, ``[[``, ``["`` or ``[]`` (whitespace allowed) - so prose that
happens to start with ``[1]`` or ``{{name}}`` is left alone; ``require=True``
treats every output as JSON (root must be an object or an array).

``strict_json`` checks the complete text once, with a real parser.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NoReturn

import orjson

from l0_core.guardrails.rule import Severity, Violation
from l0_core.guardrails.rules._base import BuiltinRule, CompletionOnlyRule

__all__ = ["JsonRule", "StrictJsonRule"]

_STR_RUN = re.compile(r'[^"\\\x00-\x1f]*+')
_WS_RUN = re.compile(r"[ \t\n\r]*+")
_DIGITS = re.compile(r"[0-9]*+")

# modes of the scanner
_VALUE = 0  # a value must come (after ':' or ',' in an array, or the root)
_VALUE_OR_CLOSE = 1  # just after '['
_KEY = 2  # after ',' in an object
_KEY_OR_CLOSE = 3  # just after '{'
_COLON = 4  # after a key
_AFTER = 5  # after a value inside a container: ',' or the closer
_DONE = 6  # the root value is complete
_STR = 7  # inside a string (key or value: see _in_key)
_ESC = 8  # after a backslash in a string
_UNI = 9  # inside \\uXXXX (``_count`` hex digits still to come)
_NUM = 10  # inside a number (``_num`` is the number automaton's state)
_LIT = 11  # inside true/false/null (``_lit`` is what is still to come)
_UNDECIDED = 12  # auto mode: nothing but whitespace so far
_PENDING = 13  # auto mode: saw '{' or '[' (``_pend``), waiting for the next character
_DEAD = 14  # an error was reported: nothing more to say
_OFF = 15  # auto mode: the output does not start like JSON

# Runs of complete, valid tokens, consumed in one step where the scanner would accept
# them one character at a time: strings, numbers followed by what ends them (so a number
# cut by the end of a delta is not taken), literals, and the commas and colons between
# them, within one container. Anything else (a bracket, an error, a token cut short) is
# left to the scanner. A run ends after a value (_AFTER), after ',' (_KEY in an object,
# _VALUE in an array) or after a key and its ':' (_VALUE): see _run_mode.
# (Possessive quantifiers: none of these runs ever has to give characters back, and the
# engine then keeps no backtracking points for them.)
_W = r"[ \t\n\r]*+"
_S = r'"[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+"'
_N = r"-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?(?=[ \t\n\r,\]}])"
_SCALAR = rf"(?>{_S}|{_N}|true|false|null)"


def _containers(value: str) -> str:
    """A complete object or array whose values match ``value`` (one whitespace run
    between any two tokens, so that a failing match backtracks in linear time)."""
    member = rf"{_S}{_W}:{_W}{value}{_W}"
    return (rf"(?>\{{{_W}(?:{member}(?:,{_W}{member})*+)?\}}"
            rf"|\[{_W}(?:{value}{_W}(?:,{_W}{value}{_W})*+)?\])")


# A value: a scalar, or a complete container nested at most two deep (``{"a": [1]}``),
# so that a delta's run of small objects, such as the items of a list, is one match
# instead of a Python step per bracket. Deeper or unfinished containers are left to
# the scanner, as is anything that would be an error.
_V = rf"(?>{_SCALAR}|{_containers(rf'(?>{_SCALAR}|{_containers(_SCALAR)})')})"
_MEMBERS = rf"(?:{_W},{_W}{_S}{_W}:{_W}{_V})*{_W}"  # more of an object, after a value
_ITEMS = rf"(?:{_W},{_W}{_V})*{_W}"  # more of an array, after a value
_OBJECT_END = rf"(?:(?P<comma>,{_W})(?P<key>{_S}{_W}:{_W})?)?"
_ARRAY_END = rf"(?P<comma>,{_W})?"
_RUN_AFTER = {  # at ',' after a value, by the container's top
    "{": re.compile(_MEMBERS + _OBJECT_END).match,
    "[": re.compile(_ITEMS + _ARRAY_END).match,
}
_RUN_VALUE = {  # at the first character of a value, by the container's top
    "{": re.compile(_V + _MEMBERS + _OBJECT_END).match,
    "[": re.compile(_V + _ITEMS + _ARRAY_END).match,
}
_RUN_KEY = re.compile(  # at a key's '"'
    rf"{_S}{_W}:{_W}(?P<value>{_V}{_MEMBERS}{_OBJECT_END})?"
).match
_VALUE_START = frozenset('"-0123456789tfn{[')
_RUN_MIN = 8  # (a shorter rest of a delta is left to the scanner: a run would not pay)


def _run_mode(m: re.Match[str], top: str) -> int:
    """The scanner's mode after a run."""
    if m.group("comma") is None:
        return _AFTER
    if top == "[" or m.group("key") is not None:
        return _VALUE
    return _KEY


# the number automaton: state -> {character class -> state}; accepting states end a number
_N_MINUS, _N_ZERO, _N_INT, _N_DOT, _N_FRAC, _N_E, _N_ESIGN, _N_EXP = range(1, 9)
_N_ACCEPT = frozenset((_N_ZERO, _N_INT, _N_FRAC, _N_EXP))
_NUM_CHARS = frozenset("0123456789+-.eE")
_DIGIT_SET = frozenset("0123456789")


def _num_step(state: int, c: str) -> int:
    """The next state of the number automaton, or 0 when ``c`` cannot come here."""
    digit = c in _DIGIT_SET
    if state == _N_MINUS:
        return _N_ZERO if c == "0" else (_N_INT if digit else 0)
    if state == _N_ZERO:
        return _N_DOT if c == "." else (_N_E if c in "eE" else 0)
    if state == _N_INT:
        return _N_INT if digit else (_N_DOT if c == "." else (_N_E if c in "eE" else 0))
    if state == _N_DOT:
        return _N_FRAC if digit else 0
    if state == _N_FRAC:
        return _N_FRAC if digit else (_N_E if c in "eE" else 0)
    if state == _N_E:
        return _N_ESIGN if c in "+-" else (_N_EXP if digit else 0)
    if state in (_N_ESIGN, _N_EXP):
        return _N_EXP if digit else 0
    return 0


_CLOSER = {"{": "}", "[": "]"}
_LITERALS = {"t": "true", "f": "false", "n": "null"}


def _show(c: str) -> str:
    return repr(c)


class _Rejected(Exception):
    """An impossible character at ``at`` (an index in the text being scanned): raised by
    the scanner's steps, turned into the rule's violation by ``JsonRule._run``."""

    def __init__(self, at: int, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


def _reject_value_start(c: str, i: int, stack: list[str]) -> NoReturn:
    """``c`` cannot start a value here: a closer, or a scalar as the root."""
    if c == "}" or c == "]":
        if not stack:
            what = "brace" if c == "}" else "bracket"
            raise _Rejected(i, f"unexpected {c!r}: no open {what}")
        raise _Rejected(i, f"unexpected {c!r}: a value must come first")
    raise _Rejected(i, f"the JSON root must be an object or an array, not {_show(c)}")


# The scanner's state without its stack (and the stack's top) is a small tuple; each
# distinct one gets an id. For a delta that does not pop below the stack it found, the
# scanner's effect is a pure function of (state id, delta): the new state id and what
# the delta leaves pushed. Token streams repeat their deltas, so these moves are memoised
# (shared by every session: a cache of a pure function).
_State = tuple[int, str, bool, int, int, str, str, bool, bool]
_SIDS: dict[_State, int] = {}
_STATES: list[_State] = []
_MEMO: list[dict[str, tuple[int, str]]] = []
_MEMO_LIMIT = 100_000  # entries in all; the memo starts afresh when it holds more
_MEMO_DELTA = 16  # longer deltas (several tokens) are not memoised: they rarely come again
_memo_size = 0
_INTERN_LOCK = threading.Lock()


def _remember(sid: int, delta: str, move: tuple[int, str]) -> None:
    global _memo_size
    if _memo_size >= _MEMO_LIMIT:  # bounded memory: start afresh (it refills quickly)
        for memo in _MEMO:
            memo.clear()
        _memo_size = 0
    _MEMO[sid][delta] = move
    _memo_size += 1


def _intern(state: _State) -> int:
    sid = _SIDS.get(state)
    if sid is None:
        with _INTERN_LOCK:  # (sessions may run in several threads: ids must stay unique)
            sid = _SIDS.get(state)
            if sid is None:
                _STATES.append(state)
                _MEMO.append({})
                sid = _SIDS[state] = len(_STATES) - 1
    return sid


class JsonRule(BuiltinRule):
    """Registered as ``json``: the output must be well-formed JSON.

    :param require: every output must be one JSON object or array (``False``,
        the default: only output that starts like JSON is checked).
    :param multiple: allow several root values one after the other (JSON Lines).
    :param severity: ``error`` by default (the attempt is retried).
    """

    name = "json"
    default_severity: ClassVar[Severity] = "error"

    __slots__ = ("_count", "_idle", "_in_key", "_lit", "_low", "_mode", "_multiple", "_num",
                 "_pend", "_require", "_sid", "_stack", "_stale")

    def __init__(
        self,
        *,
        require: bool = False,
        multiple: bool = False,
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            severity=severity, recoverable=recoverable, streaming=streaming, **options
        )
        self._require = bool(require)
        self._multiple = bool(multiple)
        self._reset()

    def _options(self) -> dict[str, Any]:
        return {**super()._options(), "require": self._require, "multiple": self._multiple}

    def _reset(self) -> None:
        self._mode = _VALUE if self._require else _UNDECIDED
        self._stack: list[str] = []
        self._in_key = False
        self._count = 0
        self._num = 0
        self._lit = ""
        self._pend = ""
        self._low = 0  # the lowest stack depth during the last run
        # The state's id (-1: not interned, the fields are the state) and whether the
        # fields are behind it (the memoised path moves only the id).
        self._sid = -1
        self._stale = False
        self._idle = False  # off (not JSON) or dead (an error was reported)

    # -- streaming ----------------------------------------------------------------------

    def _intern(self) -> int:
        stack = self._stack
        return _intern((self._mode, stack[-1] if stack else "", self._in_key, self._count,
                        self._num, self._lit, self._pend, self._require, self._multiple))

    def _load(self) -> None:
        """Set the scanner's fields from its state id, if the memoised path moved it."""
        if self._stale:
            (self._mode, _, self._in_key, self._count, self._num, self._lit, self._pend, _,
             _) = _STATES[self._sid]
            self._stale = False

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        if self._idle and offset == self._pos:  # not JSON, or an error was reported:
            self._pos = offset + len(delta)  # nothing more to do (synced or not)
            return None
        if offset == self._pos and self._synced:
            self._pos = offset + len(delta)
            if len(delta) <= _MEMO_DELTA:  # a token: one seen before in this state is
                sid = self._sid  # one lookup (with several tokens per check, deltas are
                if sid < 0:  # longer and scanned: the id is not kept up then)
                    sid = self._sid = self._intern()
                moved = _MEMO[sid].get(delta)
                if moved is not None:
                    self._sid, pushed = moved
                    self._stale = True
                    if pushed:
                        self._stack.extend(pushed)
                    return None
            return self._scan(delta, offset)
        return super().check_delta(delta, offset)

    def _scan(self, s: str, base: int) -> list[Violation] | None:
        self._load()
        sid = self._sid
        depth = self._low = len(self._stack)
        err = self._run(s, base)
        self._idle = self._mode >= _DEAD
        if self._mode == _OFF:  # not JSON: nothing to check until the end
            self.streaming = False
        if err is not None:
            self._sid = -1
            return [err]
        if len(s) <= _MEMO_DELTA and sid >= 0:
            self._sid = self._intern()
            if self._low >= depth:
                _remember(sid, s, (self._sid, "".join(self._stack[depth:])))
        else:
            self._sid = -1
        return None

    def _run(self, s: str, base: int) -> Violation | None:
        """Scan ``s`` from the carried state: one step per mode, each step taking what it
        can (a run of characters, or one) and returning where the next step starts."""
        n = len(s)
        i = 0
        steps = _STEPS
        try:
            while i < n:
                i = steps[self._mode](self, s, i, n)
        except _Rejected as rejected:
            self._mode = _DEAD
            return self._violation(
                rejected.message, base + rejected.at, "the output is not valid JSON; retry"
            )
        return None

    def _close_container(self) -> None:
        stack = self._stack
        stack.pop()
        if len(stack) < self._low:
            self._low = len(stack)
        self._mode = _AFTER if stack else _DONE

    # -- the steps, by mode (see _STEPS): (text, index, length) -> the next index ------------

    def _string_step(self, s: str, i: int, n: int) -> int:
        j = _STR_RUN.match(s, i).end()  # type: ignore[union-attr]
        if j >= n:
            return n
        c = s[j]
        if c == '"':
            self._mode = _COLON if self._in_key else (_AFTER if self._stack else _DONE)
        elif c == "\\":
            self._mode = _ESC
        else:
            raise _Rejected(j, f"unescaped control character {c!r} in a string")
        return j + 1

    def _after_value_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        if c in " \t\n\r":
            i = _WS_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                return n
            c = s[i]
        top = self._stack[-1]
        if c == ",":
            if n - i > _RUN_MIN:  # (the run takes at least the comma)
                m = _RUN_AFTER[top](s, i)
                assert m is not None
                self._mode = _run_mode(m, top)
                return m.end()
            self._mode = _KEY if top == "{" else _VALUE
        elif c == "}" or c == "]":
            if _CLOSER[top] != c:
                raise _Rejected(i, f"{c!r} closes {top!r} (expected {_CLOSER[top]!r})")
            self._close_container()
        else:
            raise _Rejected(i, f"unexpected {_show(c)}: expected ',' or {_CLOSER[top]!r}")
        return i + 1

    def _number_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        state = self._num
        if c in _NUM_CHARS:
            nxt = _num_step(state, c)
            if not nxt:
                raise _Rejected(i, f"invalid number: unexpected {_show(c)}")
            self._num = nxt
            i += 1
            if nxt in (_N_INT, _N_FRAC, _N_EXP):
                i = _DIGITS.match(s, i).end()  # type: ignore[union-attr]
            return i
        if state not in _N_ACCEPT:
            raise _Rejected(i, f"incomplete number before {_show(c)}")
        self._mode = _AFTER if self._stack else _DONE
        return i  # the character is looked at again in the new mode

    def _value_step(self, s: str, i: int, n: int) -> int:  # _VALUE, _VALUE_OR_CLOSE
        c = s[i]
        if c in " \t\n\r":
            i = _WS_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                return n
            c = s[i]
        stack = self._stack
        if n - i > _RUN_MIN and stack and c in _VALUE_START:
            top = stack[-1]
            m = _RUN_VALUE[top](s, i)
            if m is not None:
                self._mode = _run_mode(m, top)
                return m.end()
        if c == '"' and stack:
            self._mode = _STR
            self._in_key = False
        elif c == "{" or c == "[":
            stack.append(c)
            self._mode = _KEY_OR_CLOSE if c == "{" else _VALUE_OR_CLOSE
        elif c == "]" and self._mode == _VALUE_OR_CLOSE:
            self._close_container()
        elif not stack or c == "}" or c == "]":
            _reject_value_start(c, i, stack)
        elif c in _DIGIT_SET or c == "-":
            self._mode = _NUM
            self._num = _N_ZERO if c == "0" else (_N_MINUS if c == "-" else _N_INT)
        elif c in _LITERALS:
            self._mode = _LIT
            self._lit = _LITERALS[c][1:]
        else:
            raise _Rejected(i, f"unexpected {_show(c)}: expected a value")
        return i + 1

    def _key_step(self, s: str, i: int, n: int) -> int:  # _KEY, _KEY_OR_CLOSE
        c = s[i]
        if c in " \t\n\r":
            i = _WS_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                return n
            c = s[i]
        if c == '"':
            m = _RUN_KEY(s, i) if n - i > _RUN_MIN else None
            if m is not None:
                self._mode = _VALUE if m.group("value") is None else _run_mode(m, "{")
                return m.end()
            self._mode = _STR
            self._in_key = True
        elif c == "}" and self._mode == _KEY_OR_CLOSE:
            self._close_container()
        elif c == "}":
            raise _Rejected(i, "a trailing comma before '}'")
        else:
            raise _Rejected(i, f"unexpected {_show(c)}: expected a key string")
        return i + 1

    def _colon_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        if c in " \t\n\r":
            i = _WS_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                return n
            c = s[i]
        if c != ":":
            raise _Rejected(i, f"unexpected {_show(c)}: expected ':' after a key")
        self._mode = _VALUE
        return i + 1

    def _escape_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        if c == "u":
            self._mode = _UNI
            self._count = 4
        elif c in '"\\/bfnrt':
            self._mode = _STR
        else:
            raise _Rejected(i, f"invalid escape '\\{c}' in a string")
        return i + 1

    def _unicode_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        if c not in "0123456789abcdefABCDEF":
            raise _Rejected(i, f"invalid \\u escape: {_show(c)} is not hex")
        self._count -= 1
        if not self._count:
            self._mode = _STR
        return i + 1

    def _literal_step(self, s: str, i: int, n: int) -> int:
        lit = self._lit
        if s.startswith(lit, i):
            self._lit = ""
            self._mode = _AFTER if self._stack else _DONE
            return i + len(lit)
        c = s[i]
        if c != lit[0]:
            raise _Rejected(i, f"invalid literal: unexpected {_show(c)}")
        self._lit = lit[1:]
        return i + 1

    def _done_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        if c in " \t\n\r":
            i = _WS_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                return n
            c = s[i]
        if self._multiple and (c == "{" or c == "["):
            self._mode = _VALUE
            return i  # the next root value starts here
        if c == "}" or c == "]":
            what = "brace" if c == "}" else "bracket"
            raise _Rejected(i, f"unexpected {c!r}: no open {what}")
        if c in "{[\"-0123456789":
            raise _Rejected(i, "a second root value after the JSON value")
        raise _Rejected(i, f"unexpected text after the JSON value: {_show(c)}")

    def _undecided_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        if c in " \t\n\r":
            i = _WS_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                return n
            c = s[i]
        if c == "{" or c == "[":
            self._mode = _PENDING
            self._pend = c
            return i + 1
        self._mode = _OFF
        return n

    def _pending_step(self, s: str, i: int, n: int) -> int:
        c = s[i]
        if c in " \t\n\r":
            i = _WS_RUN.match(s, i).end()  # type: ignore[union-attr]
            if i >= n:
                return n
            c = s[i]
        pend = self._pend
        if (pend == "{" and c in '"}') or (pend == "[" and c in '{["]'):
            self._stack.append(pend)
            self._mode = _KEY_OR_CLOSE if pend == "{" else _VALUE_OR_CLOSE
            return i  # the character is looked at again in the new mode
        self._mode = _OFF
        return n

    def _idle_step(self, s: str, i: int, n: int) -> int:  # _OFF, _DEAD
        return n

    # -- completion -----------------------------------------------------------------------

    def _finish(self, content: str) -> list[Violation] | None:
        self._load()
        mode = self._mode
        if mode in (_OFF, _DEAD, _DONE, _UNDECIDED):
            if mode == _UNDECIDED and self._require:  # pragma: no cover - require starts at VALUE
                return [self._violation("no JSON value", len(content))]
            return None
        stack = list(self._stack)
        if mode == _PENDING:
            stack = [self._pend]
        if mode == _VALUE and not stack:
            return [
                self._violation(
                    "no JSON value in the output", len(content),
                    "the output should be a JSON object or array",
                )
            ]
        problems = []
        if mode in (_STR, _ESC, _UNI):
            problems.append("an unclosed string")
        elif mode == _NUM and self._num not in _N_ACCEPT:
            problems.append("an incomplete number")
        elif mode == _LIT:
            problems.append("an incomplete literal")
        elif mode == _COLON:
            problems.append("a key without a value")
        elif mode in (_VALUE, _KEY):
            problems.append("a missing value after ',' or ':'")
        missing = "".join(_CLOSER[c] for c in reversed(stack))
        if missing:
            problems.append(f"missing {missing!r}")
        return [
            self._violation(
                f"the JSON is incomplete: {'; '.join(problems)}",
                len(content),
                "the output looks cut off; retry or continue it",
                context={"missing": missing},
            )
        ]


_Step = Callable[[JsonRule, str, int, int], int]
_STEPS_BY_MODE: dict[int, _Step] = {
    _VALUE: JsonRule._value_step,
    _VALUE_OR_CLOSE: JsonRule._value_step,
    _KEY: JsonRule._key_step,
    _KEY_OR_CLOSE: JsonRule._key_step,
    _COLON: JsonRule._colon_step,
    _AFTER: JsonRule._after_value_step,
    _DONE: JsonRule._done_step,
    _STR: JsonRule._string_step,
    _ESC: JsonRule._escape_step,
    _UNI: JsonRule._unicode_step,
    _NUM: JsonRule._number_step,
    _LIT: JsonRule._literal_step,
    _UNDECIDED: JsonRule._undecided_step,
    _PENDING: JsonRule._pending_step,
    _DEAD: JsonRule._idle_step,
    _OFF: JsonRule._idle_step,
}
_STEPS: tuple[_Step, ...] = tuple(_STEPS_BY_MODE[mode] for mode in range(len(_STEPS_BY_MODE)))


class StrictJsonRule(CompletionOnlyRule):
    """Registered as ``strict_json``: the complete output must parse as a JSON object or array.

    Checked once, on the complete text (``json.loads`` semantics, via orjson).
    """

    name = "strict_json"
    default_severity: ClassVar[Severity] = "error"

    __slots__ = ()

    def __init__(
        self,
        *,
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(severity=severity, recoverable=recoverable, streaming=False, **options)

    def _options(self) -> dict[str, Any]:
        return {"severity": self.severity, "recoverable": self.recoverable}

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        return None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        text = content.strip()
        if not text:
            return [self._violation("the output is empty; JSON was expected", 0)]
        lead = len(content) - len(content.lstrip())
        if text[0] not in "{[":
            return [
                self._violation(
                    f"the output does not look like JSON (it starts with {text[0]!r})", lead,
                    "the output should be a JSON object or array",
                )
            ]
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            return [
                self._violation(
                    f"invalid JSON: {exc.msg} at position {exc.pos}", exc.pos,
                    "the output is not valid JSON; retry",
                )
            ]
        if not isinstance(value, dict | list):  # pragma: no cover - starts with { or [
            return [self._violation("the JSON root is not an object or an array", lead)]
        return None

"""The ``markdown`` rule: code fences must be closed; table rows must agree on columns.

The rule works line by line without keeping lines: for the line being written
it remembers only how it starts (indentation, a run of backticks or tildes and
what follows it) and, for tables, how many unescaped ``|`` it has and whether
it starts and ends with one. A fence is 3+ backticks or 3+ tildes at the start
of a line (after optional indentation); it is closed only by a fence of the
same character that is at least as long, with nothing after it, so a ```````` ```` ````````
fence can contain ```` ``` ```` lines. Inside a fence nothing else is checked.

A table is a row with pipes followed by a delimiter row (``|---|:--:|``); the
delimiter row and every body row must have the header's number of cells.

Violations: an unclosed fence at the end is an ``error``; a table row with the
wrong number of cells is a ``warning`` (reported when the row is complete, once
per table).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from l0_core.guardrails import Severity, Violation
from l0_core.rules._base import BuiltinRule, check_severity

__all__ = ["MarkdownRule"]

_NOT_DELIM = re.compile(r"[^ \t|:\-\r]")
_DELIM_ROW = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*\r?")
_MAX_DELIM = 1000  # a delimiter row longer than this is not kept (nor recognised)

# line states
_LS_START = 0  # in the leading whitespace
_LS_RUN = 1  # in a run of ` or ~ at the start of the line
_LS_AFTER = 2  # after a run of 3+ (a fence candidate): the info string / the rest
_LS_TEXT = 3  # an ordinary line


class MarkdownRule(BuiltinRule):
    """Registered as ``markdown``.

    :param fence_severity: for an unclosed code fence (``error``).
    :param table_severity: for table rows with the wrong number of cells (``warning``).
    :param tables: check tables at all (``True``).
    """

    name = "markdown"
    default_severity: ClassVar[Severity] = "error"

    __slots__ = ("_bs", "_cells_prev", "_delim", "_dline", "_fence", "_fence_pos",
                 "_fence_sev", "_first", "_last", "_last_bs", "_line_pos", "_ls", "_pipes",
                 "_prev_pos", "_quiet", "_rest_tick", "_rest_ws", "_run_char", "_run_len",
                 "_table", "_table_sev", "_table_warned", "_tables")

    def __init__(
        self,
        *,
        fence_severity: Severity = "error",
        table_severity: Severity = "warning",
        tables: bool = True,
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            severity=severity, recoverable=recoverable, streaming=streaming, **options
        )
        # ``severity`` (when given) applies to both kinds
        self._fence_sev = check_severity(severity or fence_severity, self.name)
        self._table_sev = check_severity(severity or table_severity, self.name)
        self._tables = bool(tables)
        self._reset()

    def _options(self) -> dict[str, Any]:
        return {
            "recoverable": self.recoverable,
            "streaming": self.streaming,
            "fence_severity": self._fence_sev,
            "table_severity": self._table_sev,
            "tables": self._tables,
        }

    def _reset(self) -> None:
        self._fence = ""  # the open fence ("```", "~~~~"...) or ""
        self._fence_pos = 0
        self._table = 0  # the header's number of cells while in a table, else 0
        self._table_warned = False
        self._cells_prev = -1  # cells of the previous line when it had pipes, else -1
        self._prev_pos = 0
        self._new_line(0)

    def _new_line(self, pos: int) -> None:
        self._line_pos = pos
        self._ls = _LS_START
        self._first = ""  # the first non-blank character of the line
        self._run_char = ""
        self._run_len = 0
        self._rest_ws = True
        self._rest_tick = False
        self._pipes = 0
        self._last = ""  # the last non-blank character
        self._last_bs = False  # ... and whether it was escaped
        self._bs = False  # the previous character was a backslash
        self._delim = True  # only delimiter-row characters so far
        self._dline: list[str] = []
        self._quiet = False  # nothing but a newline or a pipe can change anything

    # -- streaming ------------------------------------------------------------------------

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        # the hot path: the rest of an ordinary line with nothing to track
        if self._quiet and offset == self._pos and "\n" not in delta and "|" not in delta:
            self._pos = offset + len(delta)
            if delta:
                self._bs = delta[-1] == "\\"
            return None
        return super().check_delta(delta, offset)

    def _track_last(self, seg: str) -> None:
        stripped = seg.rstrip()
        if stripped:
            self._last = stripped[-1]
            self._last_bs = (stripped[-2] == "\\") if len(stripped) > 1 else self._bs
        if seg:
            self._bs = seg[-1] == "\\"

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:
        found: list[Violation] | None = None
        start = 0
        n = len(delta)
        while start <= n:
            nl = delta.find("\n", start)
            seg = delta[start:] if nl < 0 else delta[start:nl]
            if seg:
                self._part(seg)
            if nl < 0:
                break
            v = self._end_line(offset + nl)
            if v is not None:
                if found is None:
                    found = []
                found.append(v)
            self._new_line(offset + nl + 1)
            start = nl + 1
        return found

    def _part(self, seg: str) -> None:
        """A piece of the current line (no newline in it)."""
        i = 0
        n = len(seg)
        if self._ls == _LS_START:
            rest = seg.lstrip(" \t")
            i = n - len(rest)
            if not rest:
                return
            c = rest[0]
            self._first = c
            if c == "`" or c == "~":
                self._ls = _LS_RUN
                self._run_char = c
            else:
                self._ls = _LS_TEXT
        if self._ls == _LS_RUN:
            run = seg[i:]
            rest = run.lstrip(self._run_char)
            self._run_len += len(run) - len(rest)
            if not rest:
                return
            i = n - len(rest)
            self._ls = _LS_AFTER if self._run_len >= 3 else _LS_TEXT
        if self._ls == _LS_AFTER:
            rest = seg[i:]
            if self._rest_ws and rest.strip():
                self._rest_ws = False
            if "`" in rest:
                self._rest_tick = True
            return
        # an ordinary line: only tables need anything
        if self._fence or not self._tables:
            self._quiet = True
            return
        if self._delim:
            if _NOT_DELIM.search(seg) is not None:
                self._delim = False
                self._dline = []
            elif sum(map(len, self._dline)) < _MAX_DELIM:
                self._dline.append(seg)
            else:
                self._delim = False
        pipes = seg.count("|")
        if pipes:
            escaped = seg.count("\\|")
            if self._bs and seg[0] == "|":
                escaped += 1
            self._pipes += pipes - escaped
        self._track_last(seg)
        # until the line ends, only a pipe can matter now
        self._quiet = not self._pipes and not self._delim

    def _cells(self) -> int:
        """Cells of the current line (which has unescaped pipes)."""
        cells = self._pipes + 1
        if self._first == "|":
            cells -= 1
        if self._last == "|" and not self._last_bs and self._pipes > (self._first == "|"):
            cells -= 1
        return max(cells, 1)

    def _end_line(self, pos: int) -> Violation | None:
        """The current line ends at ``pos`` (a newline, or the end of the text)."""
        ls = self._ls
        if ls == _LS_RUN and self._run_len >= 3:
            ls = _LS_AFTER  # a bare fence line
        if ls == _LS_AFTER:
            char = self._run_char
            if self._fence:
                if char == self._fence[0] and self._run_len >= len(self._fence) and (
                    self._rest_ws
                ):
                    self._fence = ""
            elif not (char == "`" and self._rest_tick):
                self._fence = char * self._run_len
                self._fence_pos = self._line_pos
            self._table = 0
            self._cells_prev = -1
            return None
        if self._fence or not self._tables:
            return None
        found: Violation | None = None
        has_pipes = self._pipes > 0
        cells = self._cells() if has_pipes else -1
        is_delim = (
            has_pipes
            and self._delim
            and self._dline
            and _DELIM_ROW.fullmatch("".join(self._dline)) is not None
        )
        if self._table:
            if not has_pipes:
                self._table = 0  # the table ended
            elif cells != self._table and not self._table_warned:
                self._table_warned = True
                found = self._table_violation(
                    f"a table row has {cells} cells but the header has {self._table}",
                    self._line_pos,
                )
        elif is_delim and self._cells_prev > 0:
            header = self._cells_prev
            self._table = header
            self._table_warned = False
            if cells != header:
                self._table_warned = True
                found = self._table_violation(
                    f"a table's delimiter row has {cells} cells but its header has {header}",
                    self._line_pos,
                )
        self._cells_prev = cells if has_pipes else -1
        return found

    def _table_violation(self, message: str, position: int) -> Violation:
        return self._violation(
            message, position, "make every row of the table have the same number of cells",
            severity=self._table_sev,
        )

    # -- completion -----------------------------------------------------------------------

    def _finish(self, content: str) -> list[Violation] | None:
        found: list[Violation] = []
        if self._pos > self._line_pos:  # the last line has no newline: it ends here
            v = self._end_line(self._pos)
            self._new_line(self._pos)
            if v is not None:
                found.append(v)
        if self._fence:
            fence = self._fence
            found.append(
                self._violation(
                    f"a code fence ({fence}) opened at position {self._fence_pos} is never "
                    f"closed",
                    self._fence_pos,
                    f"close the code block with a line of {fence}",
                    severity=self._fence_sev,
                    context={"fence": fence},
                )
            )
        return found or None

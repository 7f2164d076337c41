"""The ``markdown`` rule: code fences must be closed; table rows must agree on columns.

The rule works line by line. It keeps the line being written until it ends (up
to 256 characters) and then looks at it whole, with a few C-level string calls;
whole lines inside a delta are looked at only when they have a pipe or start
like a fence (any other line just ends a table). A longer line is followed as
it comes, without keeping it: for it the rule remembers only how it starts
(indentation, a run of backticks or tildes and what follows it) and, for
tables, how many unescaped ``|`` it has and whether it starts and ends with
one. A fence is 3+ backticks or 3+ tildes at the start of a line (after
optional indentation); it is closed only by a fence of the same character that
is at least as long, with nothing after it, so a ```````` ```` ```````` fence can
contain ```` ``` ```` lines. Inside a fence nothing else is checked.

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

from l0_core.guardrails.rule import Severity, Violation
from l0_core.guardrails.rules._base import BuiltinRule, check_severity

__all__ = ["MarkdownRule"]

_NOT_DELIM = re.compile(r"[^ \t|:\-\r]")
_DELIM_ROW = re.compile(r"[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*\r?")
_MAX_DELIM = 1000  # a delimiter row longer than this is not kept (nor recognised)
_FENCE_CHARS = ("`", "~")
_LINE_BUF = 256  # a line is kept until it ends up to this length, then followed as it comes

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

    __slots__ = ("_bs", "_buf", "_buf_len", "_cells_prev", "_delim", "_dline", "_fence",
                 "_fence_pos", "_fence_sev", "_first", "_inc", "_last", "_last_bs",
                 "_line_pos", "_ls", "_pipes", "_prev_pos", "_quiet", "_rest_tick",
                 "_rest_ws", "_run_char", "_run_len", "_table", "_table_sev",
                 "_table_warned", "_tables")

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
            "streaming": self._streaming,  # (as configured: a rule may turn it off)
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
        self._open_line(0)

    def _open_line(self, pos: int) -> None:
        """A line starts at ``pos``: its text is kept until it ends (``_buf``), up to
        ``_LINE_BUF`` characters; a longer line is followed incrementally (``_inc``)."""
        self._line_pos = pos
        self._buf: list[str] = []
        self._buf_len = 0
        self._inc = False
        self._quiet = False

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
        # the hot paths: more of the current line - a long ordinary line with nothing to
        # track (only a newline or a pipe can change anything), or a line being kept
        if self._quiet and offset == self._pos and "\n" not in delta and "|" not in delta:
            self._pos = offset + len(delta)
            if delta:
                self._bs = delta[-1] == "\\"
            return None
        if offset == self._pos and self._synced:
            if not self._inc and "\n" not in delta:
                size = self._buf_len + len(delta)
                if size <= _LINE_BUF:
                    self._buf.append(delta)
                    self._buf_len = size
                    self._pos = offset + len(delta)
                    return None
            self._pos = offset + len(delta)
            return self._scan(delta, offset)
        return super().check_delta(delta, offset)

    def _add(self, seg: str) -> None:
        """More of the current line (no newline in it)."""
        if self._inc:
            self._part(seg)
            return
        self._buf.append(seg)
        self._buf_len += len(seg)
        if self._buf_len > _LINE_BUF:  # a long line: follow it from now on
            text = "".join(self._buf)
            self._buf = []
            self._inc = True
            self._new_line(self._line_pos)
            self._part(text)

    def _close_line(self, pos: int) -> Violation | None:
        """The current line ends at ``pos`` (a newline, or the end of the text)."""
        if self._inc:
            return self._end_line(pos)
        buf = self._buf
        return self._whole_line(buf[0] if len(buf) == 1 else "".join(buf), self._line_pos)

    def _track_last(self, seg: str) -> None:
        stripped = seg.rstrip()
        if stripped:
            self._last = stripped[-1]
            self._last_bs = (stripped[-2] == "\\") if len(stripped) > 1 else self._bs
        if seg:
            self._bs = seg[-1] == "\\"

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:
        nl = delta.find("\n")
        if nl < 0:  # the current line goes on
            if delta:
                self._add(delta)
            return None
        # the end of the current line
        if nl:
            self._add(delta[:nl])
        v = self._close_line(offset + nl)
        found = None if v is None else [v]
        last = delta.rfind("\n")
        if last > nl:  # whole lines in between
            found = self._lines(delta, nl + 1, last, offset, found)
        # the start of the next line
        self._open_line(offset + last + 1)
        if last + 1 < len(delta):
            self._add(delta[last + 1 :])
        return found

    def _lines(
        self, delta: str, start: int, stop: int, offset: int, found: list[Violation] | None
    ) -> list[Violation] | None:
        """The whole lines ``delta[start:stop]`` (each ends in a newline). Only a line with
        a pipe or one that starts like a fence can matter; any other line only ends a
        table (when not in a fence), which needs no look at its characters."""
        block = delta[start:stop]
        if "|" not in block and "`" not in block and "~" not in block:
            if self._tables and not self._fence:
                self._table = 0
                self._cells_prev = -1
            return found
        pos = offset + start
        for line in block.split("\n"):
            if "|" in line or line.lstrip(" \t").startswith(_FENCE_CHARS):
                v = self._whole_line(line, pos)
                if v is not None:
                    if found is None:
                        found = []
                    found.append(v)  # (appended: one delta may hold many)
            elif self._tables and not self._fence:  # what _end_line does for such a line
                self._table = 0
                self._cells_prev = -1
            pos += len(line) + 1
        return found

    def _whole_line(self, line: str, pos: int) -> Violation | None:
        """``_new_line(pos)``, ``_part(line)`` and ``_end_line`` for a complete line, with
        the line's own state in local variables."""
        lead = line.lstrip(" \t")
        first = lead[:1]
        if first == "`" or first == "~":
            rest = lead.lstrip(first)
            run = len(lead) - len(rest)
            if run >= 3:  # a fence, opening or closing
                self._fence_line(first, run, not rest.strip(), "`" in rest, pos)
                return None
            if not rest:  # one or two of them, nothing else: no pipes
                first = ""
        if self._fence or not self._tables:
            return None
        pipes = line.count("|") if first else 0
        if pipes:
            pipes -= line.count("\\|")
        if not pipes:  # the line ends a table
            self._table = 0
            self._cells_prev = -1
            return None
        stripped = line.rstrip()
        last = stripped[-1:]
        cells = pipes + 1
        if first == "|":
            cells -= 1
        if (
            last == "|"
            and not (len(stripped) > 1 and stripped[-2] == "\\")
            and pipes > (first == "|")
        ):
            cells -= 1
        cells = max(cells, 1)
        found: Violation | None = None
        if self._table:
            found = self._body_row(cells, pos)
        elif (
            self._cells_prev > 0
            and _NOT_DELIM.search(line) is None
            and _DELIM_ROW.fullmatch(line) is not None
        ):
            found = self._delimiter_row(cells, pos)
        self._cells_prev = cells
        return found

    def _part(self, seg: str) -> None:
        """A piece of the current line (no newline in it)."""
        if self._ls != _LS_TEXT and not self._line_start_part(seg):
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

    def _line_start_part(self, seg: str) -> bool:
        """A piece of the line's start: its indentation, a run of ` or ~, what follows a
        run of 3+ (a fence candidate). Whether the line turned out ordinary (``_LS_TEXT``):
        then ``seg`` is an ordinary line's piece too."""
        i = 0
        n = len(seg)
        if self._ls == _LS_START:
            rest = seg.lstrip(" \t")
            i = n - len(rest)
            if not rest:
                return False
            c = rest[0]
            self._first = c
            if c != "`" and c != "~":
                self._ls = _LS_TEXT
                return True
            self._ls = _LS_RUN
            self._run_char = c
        if self._ls == _LS_RUN:
            run = seg[i:]
            rest = run.lstrip(self._run_char)
            self._run_len += len(run) - len(rest)
            if not rest:
                return False
            i = n - len(rest)
            if self._run_len < 3:
                self._ls = _LS_TEXT
                return True
            self._ls = _LS_AFTER
        rest = seg[i:]  # (_LS_AFTER)
        if self._rest_ws and rest.strip():
            self._rest_ws = False
        if "`" in rest:
            self._rest_tick = True
        return False

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
            self._fence_line(
                self._run_char, self._run_len, self._rest_ws, self._rest_tick, self._line_pos
            )
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
            else:
                found = self._body_row(cells, self._line_pos)
        elif is_delim and self._cells_prev > 0:
            found = self._delimiter_row(cells, self._line_pos)
        self._cells_prev = cells if has_pipes else -1
        return found

    def _fence_line(
        self, char: str, run: int, bare: bool, tick_after: bool, pos: int
    ) -> None:
        """A line at ``pos`` that starts with a run of ``run`` (3+) ``char`` (after its
        indentation): it closes the open fence when it has that fence's character, is at
        least as long and has nothing after the run (``bare``); with no fence open it opens
        one, unless it is a backtick run with a backtick after it (inline code). A table
        ends either way."""
        fence = self._fence
        if fence:
            if char == fence[0] and run >= len(fence) and bare:
                self._fence = ""
        elif not (char == "`" and tick_after):
            self._fence = char * run
            self._fence_pos = pos
        self._table = 0
        self._cells_prev = -1

    def _body_row(self, cells: int, pos: int) -> Violation | None:
        """A row of the open table: the header's number of cells (warned once a table)."""
        if cells == self._table or self._table_warned:
            return None
        self._table_warned = True
        return self._table_violation(
            f"a table row has {cells} cells but the header has {self._table}", pos
        )

    def _delimiter_row(self, cells: int, pos: int) -> Violation | None:
        """A delimiter row after a row with pipes: that row was a header; a table opens."""
        header = self._table = self._cells_prev
        self._table_warned = cells != header
        if not self._table_warned:
            return None
        return self._table_violation(
            f"a table's delimiter row has {cells} cells but its header has {header}", pos
        )

    def _table_violation(self, message: str, position: int) -> Violation:
        return self._violation(
            message, position, "make every row of the table have the same number of cells",
            severity=self._table_sev,
        )

    # -- completion -----------------------------------------------------------------------

    def _finish(self, content: str) -> list[Violation] | None:
        found: list[Violation] = []
        if self._pos > self._line_pos:  # the last line has no newline: it ends here
            v = self._close_line(self._pos)
            self._open_line(self._pos)
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

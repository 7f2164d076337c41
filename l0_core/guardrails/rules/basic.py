"""The ``zero_output``, ``stall`` and ``repetition`` rules."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from l0_core.guardrails.rule import Severity, Violation
from l0_core.guardrails.rules._base import BuiltinRule, CompletionOnlyRule

__all__ = ["RepetitionRule", "StallRule", "ZeroOutputRule"]

_ALNUM = re.compile(r"[^\W_]")  # a letter or a digit, in any script
_EMPTY_JSON = frozenset("{}[], \t\r\n")
_BLANK = frozenset(" \t\r\n\f\v")


class ZeroOutputRule(CompletionOnlyRule):
    """Registered as ``zero_output``: the output must not be empty or noise.

    Checked once, at the end (``streaming`` is off): empty or whitespace-only
    output, punctuation-only output (an empty JSON ``{}``/``[]`` is fine), and
    output longer than ``noise_length`` characters made of at most two
    distinct characters (``"aaaaaaaaaaaa"``, ``"hahahahahaha"``). All ``error``.
    The scan stops as soon as the output is clearly real text. An attempt that produced
    media or tool calls is not empty: the runtime skips this rule for it
    (``judges_emptiness``).
    """

    name = "zero_output"
    default_severity: ClassVar[Severity] = "error"
    judges_emptiness: ClassVar[bool] = True

    __slots__ = ("_noise_length",)

    def __init__(
        self,
        *,
        noise_length: int = 10,
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(severity=severity, recoverable=recoverable, streaming=False, **options)
        self._noise_length = int(noise_length)

    def _options(self) -> dict[str, Any]:
        return {"severity": self.severity, "recoverable": self.recoverable,
                "noise_length": self._noise_length}

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        return None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        stripped = content.strip()
        if not stripped:
            what = "empty" if not content else "only whitespace"
            return [self._violation(f"the output is {what}", 0, "retry the request")]
        lead = len(content) - len(content.lstrip())
        if _ALNUM.search(stripped) is None:
            if _EMPTY_JSON.issuperset(stripped):
                return None  # {} or [] : an empty JSON value is an answer
            return [
                self._violation(
                    f"the output is only punctuation: {stripped[:40]!r}", lead,
                    "the output is noise; retry",
                )
            ]
        if len(stripped) > self._noise_length:
            distinct = set(stripped[:256]) - _BLANK
            if len(distinct) <= 2:
                distinct = set(stripped) - _BLANK
                if len(distinct) <= 2:
                    chars = ", ".join(repr(c) for c in sorted(distinct))
                    return [
                        self._violation(
                            f"the output is noise: only {chars} repeated", lead,
                            "the output is noise; retry",
                        )
                    ]
        return None


class StallRule(BuiltinRule):
    """Registered as ``stall``: a ``warning`` when the output pauses for too long.

    The gap is measured between two streaming checks (so between tokens with
    the default ``CheckIntervals(guardrails=1)``). It only records the pause:
    the session's ``Timeout(inter_token=...)`` is what interrupts a stalled
    stream.

    :param max_gap: seconds (default 5.0).
    :param clock: a monotonic clock in seconds (for tests).
    """

    name = "stall"
    default_severity: ClassVar[Severity] = "warning"

    __slots__ = ("_clock", "_last", "max_gap")

    def __init__(
        self,
        *,
        max_gap: float = 5.0,
        clock: Callable[[], float] | None = None,
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(severity=severity, recoverable=recoverable, streaming=True, **options)
        if max_gap <= 0:
            raise ValueError("stall: max_gap must be positive")
        self.max_gap = float(max_gap)
        self._clock = clock or time.monotonic
        self._last: float | None = None

    def _options(self) -> dict[str, Any]:
        return {"severity": self.severity, "recoverable": self.recoverable,
                "max_gap": self.max_gap, "clock": self._clock}

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        now = self._clock()
        last = self._last
        self._last = now
        if last is not None and now - last > self.max_gap:
            return [
                self._violation(
                    f"the output stalled for {now - last:.1f}s (more than {self.max_gap:g}s)",
                    offset, "the provider is slow; consider a shorter inter_token timeout",
                    context={"gap": now - last},
                )
            ]
        return None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        return None

    def _reset(self) -> None:
        self._last = None

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:  # pragma: no cover
        return None

    def _finish(self, content: str) -> list[Violation] | None:  # pragma: no cover
        return None


_TERMINATORS = re.compile(r"[.!?\n]")


class RepetitionRule(BuiltinRule):
    """Registered as ``repetition``: the model is looping.

    Two checks, both on exact repetition (so similar-but-different sentences,
    like a list of parallel bullet points or a contract's recurring phrases,
    never count):

    * **looping**: the last ``window`` characters are one block repeated back
      to back at least ``min_repeats`` times (a block of only spaces or
      punctuation, like a ruler of ``-``, does not count). Checked every
      ``window // 4`` new characters, with one ``rfind`` and one comparison.
    * **sentences**: a sentence (or line) longer than ``sentence_length``
      characters occurs ``max_sentence_repeats`` times (whitespace and case
      ignored). Each sentence is hashed once, when it ends.

    Both ``error`` by default.
    """

    name = "repetition"
    default_severity: ClassVar[Severity] = "error"

    __slots__ = ("_counts", "_looped", "_max_repeats", "_min_repeats", "_min_sentence",
                 "_pending", "_pending_len", "_sentence_start", "_tail", "_unit",
                 "_unit_len", "_window", "work")

    _NEEDLE = 16
    _MAX_SENTENCE = 2000  # longer "sentences" (a line of minified JSON...) are not compared

    def __init__(
        self,
        *,
        window: int = 100,
        min_repeats: int = 3,
        sentence_length: int = 20,
        max_sentence_repeats: int = 3,
        severity: Severity | None = None,
        recoverable: bool = True,
        streaming: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            severity=severity, recoverable=recoverable, streaming=streaming, **options
        )
        if window < 2 * self._NEEDLE:
            raise ValueError(f"repetition: window must be at least {2 * self._NEEDLE}")
        if min_repeats < 2 or max_sentence_repeats < 2:
            raise ValueError("repetition: repeats must be at least 2")
        self._window = int(window)
        self._min_repeats = int(min_repeats)
        self._min_sentence = int(sentence_length)
        self._max_repeats = int(max_sentence_repeats)
        self._reset()

    def _options(self) -> dict[str, Any]:
        return {
            **super()._options(),
            "window": self._window,
            "min_repeats": self._min_repeats,
            "sentence_length": self._min_sentence,
            "max_sentence_repeats": self._max_repeats,
        }

    def _reset(self) -> None:
        self._tail = ""  # the last `window` characters checked
        self._pending: list[str] = []  # text since the last looping check
        self._pending_len = 0
        self._looped = False
        self._unit: list[str] | None = []  # the sentence being written (None: too long)
        self._unit_len = 0
        self._sentence_start = 0
        self._counts: dict[int, int] = {}  # sentence hash -> occurrences
        self.work = 0

    @property
    def state_size(self) -> int:
        """Characters and entries held (bounded by the window plus one sentence per hash)."""
        return len(self._tail) + self._pending_len + self._unit_len + len(self._counts)

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:
        found: list[Violation] | None = None
        # sentences
        if _TERMINATORS.search(delta) is None:
            if self._unit is not None:
                self._unit.append(delta)
                self._unit_len += len(delta)
                if self._unit_len > self._MAX_SENTENCE:
                    self._unit, self._unit_len = None, 0
        else:
            found = self._sentence_ends(delta, offset)
        # looping
        if not self._looped:
            self._pending.append(delta)
            self._pending_len += len(delta)
            if self._pending_len >= self._window // 4:
                v = self._check_loop(offset + len(delta))
                if v is not None:
                    if found is None:
                        found = []
                    found.append(v)  # (appended: one delta may hold many)
        return found

    def _sentence_ends(self, delta: str, offset: int) -> list[Violation] | None:
        """``delta`` (at ``offset``) ends one sentence or more: each is counted, and the
        text after the last terminator starts the next one."""
        found: list[Violation] | None = None
        pieces = _TERMINATORS.split(delta)  # (each terminator is one character)
        pos = offset
        shortest = self._min_sentence
        for i in range(len(pieces) - 1):
            piece = pieces[i]
            pos += len(piece)  # the terminator
            # (a short sentence in the delta counts for nothing: no call)
            if i == 0 or len(piece) > shortest:
                v = self._end_sentence(piece, pos)
                if v is not None:
                    if found is None:
                        found = []
                    found.append(v)  # (appended: one delta may hold many)
            pos += 1
            self._sentence_start = pos
        rest = pieces[-1]
        if rest:
            self._unit = [rest]
            self._unit_len = len(rest)
        return found

    def _end_sentence(self, last: str, end: int) -> Violation | None:
        unit, size = self._unit, self._unit_len + len(last)
        self._unit, self._unit_len = [], 0  # the next sentence starts
        if unit is None or size > self._MAX_SENTENCE:
            return None
        unit.append(last)
        if size <= self._min_sentence:
            return None
        raw = "".join(unit)
        text = " ".join(raw.split()).lower()
        self.work += size
        if len(text) <= self._min_sentence:
            return None
        key = hash(text)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if count == self._max_repeats:
            return self._violation(
                f"a sentence is repeated {count} times: {text[:60]!r}",
                self._sentence_start + len(raw) - len(raw.lstrip()),
                "the model is looping; retry",
                context={"kind": "sentence"},
            )
        return None

    def _check_loop(self, end: int) -> Violation | None:
        window = self._window
        text = self._tail + "".join(self._pending)
        tail = text[-window:]
        self._tail = tail
        self._pending = []
        self._pending_len = 0
        if len(tail) < window:
            return None
        self.work += window
        needle_len = self._NEEDLE
        needle = tail[-needle_len:]
        longest = window // self._min_repeats
        stop = window - 1
        while True:
            idx = tail.rfind(needle, 0, stop)
            if idx < 0:
                return None
            period = window - needle_len - idx
            if period > longest:
                return None
            if tail[period:] == tail[:-period] and _ALNUM.search(tail[-period:]) is not None:
                self._looped = True
                block = tail[-period:]
                return self._violation(
                    f"the output repeats {block[:40]!r} over and over", end - window,
                    "the model is looping; retry", context={"kind": "loop", "period": period},
                )
            stop = idx + needle_len - 1

    def _finish(self, content: str) -> list[Violation] | None:
        found: list[Violation] = []
        v = self._end_sentence("", len(content))
        if v is not None:
            found.append(v)
        if not self._looped and self._pending:
            v = self._check_loop(len(content))
            if v is not None:
                found.append(v)
        return found or None

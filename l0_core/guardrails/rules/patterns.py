"""The ``pattern`` rule: phrases that betray a bad answer, by category.

=====================  ====================================================  =================
category               what it finds                                         default severity
=====================  ====================================================  =================
``meta_commentary``    "as an AI", "as a language model", "I'm an AI ..."    ``error``
``refusal``            "I cannot provide", "I'm not able to", "I can't       ``error``
                       assist", "I'm unable to", "I must decline"
``instruction_leak``   ``[SYSTEM]``, ``[INST]``, ``<|im_start|>``,           ``error``
                       ``<<SYS>>``, ``[AVAILABLE_TOOLS]``...
``placeholders``       ``[INSERT ...]``, ``[YOUR ...]``, ``[TODO ...]``,     ``error``, at the
                       ``{{...}}``, ``<PLACEHOLDER>``                        end
``hedging``            a line starting "Sure", "Certainly", "Of course",     ``warning``
                       "Absolutely", "Great question", "I'd be happy to"
``format_collapse``    a line starting "Here is the", "Here's the", "Let     ``warning``
                       me", "Below is", "Please find"
=====================  ====================================================  =================

How it stays O(delta): line-start categories are matched once per line, on
the first 32 characters of the line (and only when the line starts with a
letter a phrase can start with). The other categories each have a few literal
*keys* (``"an ai"``, ``"language model"``, ``"[inst]"``...) that every match
contains, with bounds on how far before and after a key a match can reach.
Whether a key ends in a delta is a few C-level ``in`` tests on the delta and
the last characters before it: one per key, or one per bracket-like character
(``[`` or ``<``) for the keys that start with one, which ordinary prose
rarely contains; only when one passes are the keys themselves looked for. The
``refusal`` keys are looked for only where the text has its *gate*, an "i" followed by
" c", " m", " am " or "'m " (every refusal starts with one), found with one search for a
literal "i" instead of an ``in`` test per key. A
delta of a token or two is instead followed on an Aho-Corasick automaton over
the keys, with its moves memoised (a token stream draws its tokens from a
bounded vocabulary), so that case is one dictionary lookup. Only when a key
ends in a delta is the category's regular expression run - once, over the few
characters around that key, as soon as the text after it is there. A match
split across deltas is found; each match is reported once.

:class:`PhraseScanner` is the engine; the drift detector uses it too.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from l0_core.guardrails.rule import Severity, Violation
from l0_core.guardrails.rules._base import BuiltinRule, check_severity

__all__ = ["CATEGORIES", "Category", "PatternRule", "PhraseScanner", "category_names"]

_AP = "['’]"  # an apostrophe, straight or curly


@dataclass(frozen=True)
class Category:
    name: str
    severity: Severity
    regex: str  # case-insensitive; single spaces between words
    line_start: bool = False  # matched only at the start of a line
    # (key, before, after): a lowercase string every match contains, how many characters
    # before the key a match can start, and how many after the key's end it can end
    # (one more for a look-ahead such as a word boundary); not for line_start categories
    keys: tuple[tuple[str, int, int], ...] = ()
    at_completion: bool = False  # found while streaming, reported at the end
    first: str = ""  # line_start: the (lowercase) letters a match can start with
    # line_start: what an ASCII match starts with, lowercased (one ``startswith`` rules
    # out most lines before the expression runs)
    starts: tuple[str, ...] = ()
    suggestion: str = ""
    # a lowercase expression every match contains, at most ``gate_reach`` characters
    # before the end of its key: the keys are looked for only in text where it is found
    # (one search with a literal first character instead of an ``in`` test per key)
    gate: str = ""
    gate_reach: int = 0


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category(
            "meta_commentary", "error",
            rf"\b(?:as|i{_AP}m|i am)(?: just| only)? "
            r"(?:an (?:ai|llm|artificial intelligence)|a (?:large )?language model)\b",
            keys=(("an ai", 10, 1), ("an llm", 10, 1), ("intellig", 24, 5), ("uage model", 22, 1)),
            suggestion="answer directly, without talking about being an AI",
        ),
        Category(
            "refusal", "error",
            rf"\bi (?:cannot|can{_AP}t|can not) (?:provide|assist|help with)\b"
            rf"|\bi(?:{_AP}m| am) (?:not able|unable) to\b"
            r"|\bi must decline\b"
            rf"|\bi(?:{_AP}m| am) (?:sorry|afraid),? but i (?:cannot|can{_AP}t)\b",
            keys=(("t provide", 8, 1), ("t assist", 8, 1), ("t help with", 8, 1),
                  ("m not able to", 3, 1), ("m unable to", 3, 1), ("decline", 7, 1),
                  ("but i can", 13, 4)),
            # every match has "i" then " c", " m", " am " or "'m " (I cannot, I must,
            # I am, I'm), at most 22 characters before its key ends ("i am afraid, but i can")
            gate=rf"i(?: [cm]| am |{_AP}m )", gate_reach=22,
            suggestion="the model refused; retry or rephrase the request",
        ),
        Category(
            "instruction_leak", "error",
            r"\[(?:system|inst|/inst|available_tools)\]"
            r"|<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>"
            r"|<</?sys>>",
            keys=(("[system]", 0, 0), ("[inst]", 0, 0), ("[/inst]", 0, 0), ("[availa", 0, 10),
                  ("<|", 0, 11), ("<<sys>>", 0, 0), ("<</sys>>", 0, 0)),
            suggestion="the output contains prompt-template markers; retry",
        ),
        Category(
            "placeholders", "error",
            r"\[(?:insert|your|placeholder|todo)\b[^\]\n]{0,40}\](?!\()"
            r"|\{\{[^{}\n]{1,40}\}\}"
            r"|<placeholder>",
            keys=(("[insert", 0, 42), ("[your", 0, 42), ("[placeh", 0, 47), ("[todo", 0, 42),
                  ("{{", 0, 42), ("<placeh", 0, 6)),
            at_completion=True,
            suggestion="the output has unfilled placeholders; retry",
        ),
        Category(
            "hedging", "warning",
            rf"(?:sure|certainly|of course|absolutely|great question|i{_AP}d be happy to)\b",
            line_start=True,
            first="scoagi",
            starts=("sure", "certainly", "of course", "absolutely", "great question",
                    "i'd be happy to"),
            suggestion="start with the answer itself",
        ),
        Category(
            "format_collapse", "warning",
            rf"(?:here is the|here{_AP}s the|let me|below is|please find)\b",
            line_start=True,
            first="hlbp",
            starts=("here is the", "here's the", "let me", "below is", "please find"),
            suggestion="give the content in the requested format, without a preamble",
        ),
    )
}

_LINE_PREFIX = 32  # line-start categories look at this many characters of a line


def category_names() -> list[str]:
    return list(CATEGORIES)


def _normalise(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in CATEGORIES:
        raise ValueError(
            f"pattern: unknown category {name!r}; known: {', '.join(CATEGORIES)}"
        )
    return key


def _lower(text: str) -> str:
    """``text.lower()``, one character for one character (positions stay valid)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


class _KeyAutomaton:
    """Aho-Corasick over the (lowercase) keys, with its moves over short deltas memoised.

    ``memo[state].get(delta)`` is ``(state after delta, whether a key ends in
    delta)``, filled by :meth:`move`. A token stream draws its tokens from a
    bounded vocabulary, so when the scanner is given a token at a time nearly
    every delta is one dictionary lookup. The memo caches a pure function:
    sessions share it safely. Longer deltas (several tokens joined) are not
    followed here but probed with ``in`` tests (:meth:`PhraseScanner.feed`).
    """

    __slots__ = ("fail", "goto", "key_max", "memo", "out", "results", "size", "suffix",
                 "unknown")

    MEMO_LIMIT = 100_000  # entries in all; the memo starts afresh when it holds more
    SHORT_DELTA = 16  # longer deltas are probed, not followed on the automaton

    def __init__(self, keys: Sequence[str]) -> None:
        self.key_max = max((len(k) for k in keys), default=1)
        goto: list[dict[str, int]] = [{}]
        out = [False]
        for key in keys:
            s = 0
            for c in key:
                nxt = goto[s].get(c)
                if nxt is None:
                    nxt = len(goto)
                    goto[s][c] = nxt
                    goto.append({})
                    out.append(False)
                s = nxt
            out[s] = True
        fail = [0] * len(goto)
        queue = deque(goto[0].values())
        while queue:
            s = queue.popleft()
            for c, t in goto[s].items():
                queue.append(t)
                f = fail[s]
                while f and c not in goto[f]:
                    f = fail[f]
                fail[t] = goto[f].get(c, 0)
                out[t] = out[t] or out[fail[t]]
        self.goto, self.fail, self.out = goto, fail, out
        # (one more, never written: that of ``unknown``, the state after a probed delta)
        self.memo: list[dict[str, tuple[int, bool]]] = [{} for _ in range(len(goto) + 1)]
        self.unknown = len(goto)
        self.size = 0  # entries in all the memos
        self.results = [((s, False), (s, True)) for s in range(len(goto))]
        self.suffix: dict[str, int] = {}  # the state after some last characters

    def walk(self, state: int, low: str) -> tuple[int, bool]:
        goto, fail, out = self.goto, self.fail, self.out
        s = state
        hit = False
        for c in low:
            while s and c not in goto[s]:
                s = fail[s]
            s = goto[s].get(c, 0)
            if out[s]:
                hit = True
        return s, hit

    def move(self, state: int, delta: str) -> tuple[int, bool]:
        """The move over a short delta (memoised)."""
        s, hit = self.walk(state, delta.lower())
        result = self.results[s][hit]
        if self.size >= self.MEMO_LIMIT:
            self.clear()
        self.memo[state][delta] = result
        self.size += 1
        return result

    def clear(self) -> None:
        """Bounded memory: the memos start afresh (they refill quickly)."""
        for memo in self.memo:
            memo.clear()
        self.size = 0

    def state_of(self, tail: str) -> int:
        """The state after a text whose last ``key_max - 1`` characters are ``tail``
        (lowercase): what follows a delta that was probed instead of followed."""
        after = self.suffix.get(tail)
        if after is None:
            after = self.walk(0, tail)[0]
            if len(self.suffix) >= self.MEMO_LIMIT:
                self.suffix.clear()
            self.suffix[tail] = after
        return after


_Target = tuple[str, "re.Pattern[str]", int, int]  # (category, expression, before, after)


@dataclass(frozen=True)
class _Compiled:
    line_rx: re.Pattern[str] | None
    line_first: frozenset[str]  # the characters a line-start match can begin with
    # what an ASCII line-start match begins with, lowercased (None: not known for all)
    line_starts: tuple[str, ...] | None
    # finds the next line whose first non-blank character is in line_first
    next_line: Callable[[str, int], re.Match[str] | None] | None
    automaton: _KeyAutomaton | None
    keys_rx: re.Pattern[str] | None  # any key (to find where keys end)
    targets: dict[str, tuple[_Target, ...]]  # what each key triggers
    key_max: int
    reach: int  # characters of text a search may need
    # (anchor, at, keys, shortest, longest): every key of ``keys`` has ``anchor`` at index
    # ``at`` - its first bracket-like character, or the whole key - so a text without the
    # anchor has none of those keys; ``shortest`` and ``longest`` are their lengths
    # (the bracket-like anchors, the others of ungated categories, then those of gated
    # ones: ``any_anchor`` tests a family at once)
    anchors: tuple[tuple[tuple[str, int, tuple[str, ...], int, int], ...], ...]
    any_anchor: tuple[Callable[[str], bool], ...]  # whether a text has one of a family
    probe_tail: int  # characters before a delta that a probe looks at too


def _gated(
    gate: re.Pattern[str] | None, test: Callable[[str], bool]
) -> Callable[[str], bool]:
    """``test``, run only on text in which ``gate`` is found."""
    if gate is None:
        return test
    search = gate.search
    return lambda text: search(text) is not None and test(text)


def _any_of(needles: Sequence[str]) -> Callable[[str], bool]:
    """``lambda text: any(n in text for n in needles)``, written out as one expression of
    ``in`` tests, which is about twice as fast as a loop (it runs on every delta). The
    needles are this module's own constant keys, inserted with ``repr``."""
    source = " or ".join(f"{n!r} in text" for n in needles) or "False"
    fn: Callable[[str], bool] = eval(f"lambda text: {source}", {"__builtins__": {}})
    return fn


# Rare in prose: one ``in`` test stands for all the keys that start with one. (Keys start
# with these rather than end with ``]``, ``}}`` or ``|>``, which JSON and code are full of.)
_BRACKETS = "[<"


_COMPILED: dict[tuple[str, ...], _Compiled] = {}


def _compile(names: tuple[str, ...]) -> _Compiled:
    """The expressions and keys for a selection of categories (cached: pure)."""
    got = _COMPILED.get(names)
    if got is not None:
        return got
    cats = [CATEGORIES[n] for n in names]
    line = [c for c in cats if c.line_start]
    line_rx = (
        re.compile("|".join(f"(?P<{c.name}>{c.regex})" for c in line), re.IGNORECASE)
        if line else None
    )
    targets: dict[str, list[_Target]] = {}
    gated_keys: set[str] = set()
    for c in cats:
        if c.line_start:
            continue
        rx = re.compile(c.regex, re.IGNORECASE)
        for key, before, after in c.keys:
            targets.setdefault(key, []).append((c.name, rx, before, after))
            if c.gate:
                gated_keys.add(key)
    gated = [c for c in cats if c.gate and not c.line_start]
    # (one gate for the gated family: the selection's gates, any of them)
    gate = re.compile("|".join(f"(?:{c.gate})" for c in gated)) if gated else None
    first = "".join(c.first for c in line)
    anchors: dict[tuple[str, int], list[str]] = {}
    for key in targets:
        at = next((i for i, c in enumerate(key) if c in _BRACKETS), 0)
        anchors.setdefault((key[at] if key[at] in _BRACKETS else key, at), []).append(key)

    def family(key: tuple[str, int]) -> int:  # 0 brackets, 1 others, 2 gated others
        if key[0] in _BRACKETS:
            return 0
        return 2 if all(k in gated_keys for k in anchors[key]) else 1
    key_max = max((len(k) for k in targets), default=1)
    reach = max((t[2] + len(k) + t[3] for k, v in targets.items() for t in v), default=0)
    got = _Compiled(
        line_rx,
        frozenset(first + first.upper()),
        tuple(start for c in line for start in c.starts) if all(c.starts for c in line)
        else None,
        re.compile(f"\n[ \t\n]*(?=[{re.escape(first + first.upper())}])").search
        if line else None,
        _KeyAutomaton(list(targets)) if targets else None,
        re.compile("|".join(re.escape(k) for k in targets)) if targets else None,
        {k: tuple(v) for k, v in targets.items()},
        key_max,
        reach + 4,
        tuple(
            tuple(
                (anchor, at, tuple(keys), min(map(len, keys)), max(map(len, keys)))
                for (anchor, at), keys in anchors.items()
                if family((anchor, at)) == f
            )
            for f in (0, 1, 2)
        ),
        tuple(
            _gated(gate if f == 2 else None,
                   _any_of(list(dict.fromkeys(a for a, at in anchors if family((a, at)) == f))))
            for f in (0, 1, 2)
        ),
        max([key_max - 1, *(c.gate_reach for c in gated)]),
    )
    _COMPILED[names] = got
    return got


Hit = tuple[str, int, str]  # (category, position, matched text, lowercased)


class PhraseScanner:
    """Finds the phrases of some categories in a text given delta by delta.

    ``feed(delta, offset)`` takes the deltas in order and returns the matches
    it could decide; ``finish()`` returns the rest (matches at the very end of
    the text, decided once nothing more can follow). Each match is reported
    once, whatever the deltas. Matched text is reported lowercased.
    """

    __slots__ = ("_ac", "_anchors", "_any_anchor", "_auto", "_due", "_end", "_keys_rx", "_km1",
                 "_line_first", "_line_rx", "_line_starts", "_ls", "_memo", "_next_due",
                 "_next_line", "_prefix", "_prefix_pos", "_ptail", "_reach", "_recent", "_seen",
                 "_short", "_targets", "_unknown", "work")

    def __init__(self, categories: Iterable[str]) -> None:
        compiled = _compile(tuple(_normalise(c) for c in categories))
        self._line_rx = compiled.line_rx
        self._line_first = compiled.line_first
        self._line_starts = compiled.line_starts
        self._next_line = compiled.next_line
        self._auto = compiled.automaton
        self._memo = compiled.automaton.memo if compiled.automaton is not None else []
        self._keys_rx = compiled.keys_rx
        self._targets = compiled.targets
        self._anchors = compiled.anchors
        self._any_anchor = compiled.any_anchor
        self._short = _KeyAutomaton.SHORT_DELTA
        self._km1 = compiled.key_max - 1
        self._ptail = compiled.probe_tail
        self._reach = compiled.reach
        self._ls = 0 if self._line_rx is not None else 2  # 0: at a line start, 1: reading
        self._prefix = ""  # the line's first characters; 2: the line is decided
        self._prefix_pos = 0
        self._ac = 0  # the automaton's state (_unknown: the last delta was probed)
        self._unknown = compiled.automaton.unknown if compiled.automaton is not None else -1
        # the recent deltas (each at least one character, so they cover `reach` characters)
        self._recent: deque[str] = deque(maxlen=max(self._reach, 1))
        self._end = 0  # where the next delta starts
        # searches waiting for their text: (due, first start, last start, category, expression)
        self._due: list[tuple[int, int, int, str, re.Pattern[str]]] = []
        self._next_due = -1
        self._seen: set[tuple[int, str]] = set()  # (start, category) already reported
        self.work = 0  # characters handed to the regular expressions (for tests)

    @property
    def buffered(self) -> int:
        """Items the scanner holds (bounded, whatever the text length)."""
        return len(self._recent) + len(self._prefix) + len(self._due) + len(self._seen)

    def feed(self, delta: str, offset: int) -> list[Hit] | None:
        if not delta:
            return None
        if offset != self._end:
            self._jump(offset)
        end = self._end = offset + len(delta)
        hits = self._lines(delta, offset) if self._ls != 2 or "\n" in delta else None
        if self._auto is None:
            return hits
        # -- anywhere categories: a key ending in this delta schedules searches around it
        recent = self._recent
        if len(delta) > self._short:  # several tokens: probed with ``in`` tests (inlined:
            self._ac = self._unknown  # this is the path of every periodic check)
            tail = self._ptail
            last = recent[-1] if recent else ""
            if len(last) >= tail:
                text = last[len(last) - tail :] + delta if tail else delta
            else:  # (a short previous delta, or none)
                text = (self._text(tail)[0][-tail:] if recent else "") + delta
            cut = len(text) - len(delta)
            low = text.lower()
            if len(low) != len(text):
                low = _lower(text)  # (a character whose lowercase is longer: positions kept)
            brackets, others, gated = self._any_anchor  # (usually none has an anchor)
            anchors = self._anchors
            hit = (
                (brackets(low) and self._find(low, cut + 1, anchors[0]))
                or (others(low) and self._find(low, cut + 1, anchors[1]))
                or (gated(low) and self._find(low, cut + 1, anchors[2]))
            )
        else:  # a token: one seen before in this state is one lookup
            moved = self._memo[self._ac].get(delta) if self._ac != self._unknown else None
            if moved is not None:
                self._ac, hit = moved
            else:
                hit = self._new_delta(delta)
        recent.append(delta)
        if hit:
            self._schedule(len(delta))
        if 0 <= self._next_due <= end:
            more = self._run_due(False)
            if more:
                hits = more if hits is None else hits + more
        return hits

    def _new_delta(self, delta: str) -> bool:
        """Whether a key ends in a token not met before in this place: it is followed
        on the automaton, and the move memoised."""
        auto = self._auto
        assert auto is not None
        state = self._ac
        if state == self._unknown:  # (after a probed delta)
            state = auto.state_of(self._tail())
        self._ac, hit = auto.move(state, delta)
        return hit

    def _tail(self) -> str:
        """The last ``key_max - 1`` characters before the delta being fed, lowercased."""
        km1 = self._km1
        if not km1 or not self._recent:
            return ""
        last = self._recent[-1]
        if len(last) < km1:
            return self._text(km1)[0][-km1:]  # (lowercased already)
        return _lower(last[len(last) - km1 :])

    @staticmethod
    def _find(
        low: str, cut: int, family: tuple[tuple[str, int, tuple[str, ...], int, int], ...]
    ) -> bool:
        """Whether a key of ``family`` ends at or after index ``cut`` of ``low``."""
        for anchor, at, keys, shortest, longest in family:
            if anchor in low:
                if len(keys) == 1:  # the key itself, ending at or after the cut
                    start = cut - longest
                    if low.find(keys[0], start if start > 0 else 0) >= 0:
                        return True
                    continue
                start = cut - longest + at
                j = low.find(anchor, start if start > 0 else 0)
                while j >= 0:
                    begin = j - at  # where a key with this anchor would begin
                    if begin >= 0 and low.startswith(keys, begin):
                        if begin + shortest >= cut:
                            return True
                        for key in keys:  # (near the cut: which one)
                            if begin + len(key) >= cut and low.startswith(key, begin):
                                return True
                    j = low.find(anchor, j + 1)
        return False

    def _text(self, need: int) -> tuple[str, int]:
        """The last ``need`` (or a few more) characters, lowercased, and where they start."""
        recent = self._recent
        size = 0
        count = 0
        for chunk in reversed(recent):
            size += len(chunk)
            count += 1
            if size >= need:
                break
        if count == 1:
            text = recent[-1]
        else:
            text = "".join(recent[i] for i in range(len(recent) - count, len(recent)))
        text = _lower(text)
        return text, self._end - len(text)

    def _schedule(self, new: int) -> None:
        """Searches around each key that ends in the last ``new`` characters."""
        assert self._keys_rx is not None
        text, base = self._text(new + self._km1 + self._reach)
        new_from = len(text) - new
        search = self._keys_rx.search
        m = search(text, max(0, new_from - self._km1))
        while m is not None:
            if m.end() > new_from:  # (a key that ended earlier was seen then)
                key = m.group()
                start = base + m.start()
                for cat, rx, before, after in self._targets[key]:
                    due = start + len(key) + after
                    self._due.append((due, start - before, start, cat, rx))
                    if self._next_due < 0 or due < self._next_due:
                        self._next_due = due
            m = search(text, m.start() + 1)

    def _run_due(self, final: bool) -> list[Hit]:
        end = self._end
        text, base = self._text(end - min(d[1] for d in self._due) + 1)
        hits: list[Hit] = []
        waiting = []
        seen = self._seen
        for item in self._due:
            due, lo, hi, cat, rx = item
            if due > end and not final:
                waiting.append(item)
                continue
            # (a match needs one character before it for its word boundary)
            pos = max(lo - base, 1 if base else 0)
            last = hi - base
            stop = min(due, end) - base
            self.work += max(0, stop - pos)
            while pos <= last:
                m = rx.match(text, pos, stop) if pos == last else rx.search(text, pos, stop)
                if m is None or m.start() > last:
                    break
                found = (base + m.start(), cat)
                if found not in seen:
                    seen.add(found)
                    hits.append((cat, found[0], m.group()))
                pos = m.start() + 1
        self._due = waiting
        self._next_due = min((w[0] for w in waiting), default=-1)
        if len(seen) > 64:
            self._seen = {f for f in seen if f[0] >= end - 2 * self._reach}
        hits.sort(key=lambda h: h[1])
        return hits

    def finish(self) -> list[Hit] | None:
        hits: list[Hit] = []
        if self._ls == 1:
            hit = self._eval_line()
            if hit is not None:
                hits.append(hit)
            self._ls = 2
        if self._due:
            hits.extend(self._run_due(True))
        return hits or None

    def _jump(self, offset: int) -> None:
        """The text continues at ``offset`` (not where the last delta ended): start afresh."""
        self._ls = 0 if self._line_rx is not None else 2
        self._prefix = ""
        self._ac = 0
        self._recent.clear()
        self._due = []
        self._next_due = -1
        self._seen = set()

    # -- line-start categories --------------------------------------------------------------

    def _eval_line(self, eager: bool = False) -> Hit | None:
        """The line-start match of the current line's prefix (``eager``: only a match
        that a character follows, decided whatever comes next)."""
        assert self._line_rx is not None
        prefix = self._prefix
        starts = self._line_starts
        if starts is not None and prefix.isascii() and not prefix.lower().startswith(starts):
            return None  # (the usual line: the expression cannot match it)
        self.work += len(prefix)
        m = self._line_rx.match(prefix)
        if m is None or m.lastgroup is None or (eager and m.end() >= len(prefix)):
            return None
        return (m.lastgroup, self._prefix_pos, m.group())

    def _lines(self, delta: str, offset: int) -> list[Hit] | None:
        """The line-start matches decided in ``delta``. Line state (``_ls``): 0 at a line
        start (blanks may come), 1 reading the line's first characters, 2 the line is
        decided (the rest of it is skipped)."""
        hits: list[Hit] | None = None
        n = len(delta)
        i = 0
        while i < n:
            ls = self._ls
            if ls == 2:
                nl = delta.find("\n", i)
                if nl < 0:
                    break
                i = self._after_line_break(delta, nl)
            elif ls == 0:
                i = self._line_start(delta, i, offset)
            else:
                i, hit = self._read_prefix(delta, i)
                if hit is not None:
                    if hits is None:
                        hits = []
                    hits.append(hit)  # (appended: one delta may hold many)
        return hits

    def _after_line_break(self, delta: str, nl: int) -> int:
        """Where to read on after the line break at ``nl``: the next line start (state 0),
        or the end of ``delta`` when no line after ``nl`` starts like a phrase."""
        n = len(delta)
        if self._next_line is None:  # (no line-start category: lines stay decided)
            return n
        self._ls = 0
        if n - nl <= _LINE_PREFIX:
            return nl + 1
        # several lines: the next one that starts like a phrase, in one search
        m = self._next_line(delta, nl)
        if m is None:  # none: a line starts at the end if only blanks follow
            nl = delta.rfind("\n", nl)
            if delta[nl + 1 :].strip(" \t"):
                self._ls = 2
            return n
        return m.end()

    def _line_start(self, delta: str, i: int, offset: int) -> int:
        """Past blanks and empty lines to a line's first character: a line that may start
        a phrase is read (state 1), any other one is decided (state 2)."""
        n = len(delta)
        while i < n:
            c = delta[i]
            if c == " " or c == "\t" or c == "\n":
                i += 1
            elif c in self._line_first:
                self._ls = 1
                self._prefix = ""
                self._prefix_pos = offset + i
                return i
            else:
                self._ls = 2  # no line-start phrase begins with this character
                return i
        return n

    def _read_prefix(self, delta: str, i: int) -> tuple[int, Hit | None]:
        """Add the line's next characters to its prefix: where reading stopped, and the
        line-start match once the line is decided (state 2)."""
        nl = delta.find("\n", i)
        stop = len(delta) if nl < 0 else nl
        take = min(stop, i + _LINE_PREFIX - len(self._prefix))
        self._prefix += delta[i:take]
        if len(self._prefix) >= _LINE_PREFIX or nl >= 0:
            hit = self._eval_line()
        else:
            hit = self._eval_line(eager=True)
            if hit is None:
                return take, None  # (the end of the delta) the line may still match
        self._ls = 2
        self._prefix = ""
        return take, hit


def _severity_map(
    severity: Severity | Mapping[str, Severity] | None, names: Sequence[str]
) -> dict[str, Severity]:
    out = {n: CATEGORIES[n].severity for n in names}
    if severity is None:
        return out
    if isinstance(severity, str):
        sev = check_severity(severity, "pattern")
        return dict.fromkeys(names, sev)
    if not isinstance(severity, Mapping):
        raise TypeError("pattern: severity must be a severity or a mapping category -> severity")
    for cat, sev in severity.items():
        key = _normalise(cat)
        if key in out:
            out[key] = check_severity(sev, f"pattern ({key})")
    return out


class PatternRule(BuiltinRule):
    """Registered as ``pattern``.

    :param categories: the categories to check (default: all of them).
    :param exclude: categories not to check.
    :param severity: one severity for every category, or a mapping
        ``{category: severity}`` overriding the defaults.
    :param recoverable: for ``error``: retry (true) or halt the session.
    """

    name = "pattern"
    default_severity: ClassVar[Severity] = "error"

    __slots__ = ("_deferred", "_feed", "_late", "_names", "_scanner", "_sev")

    def __init__(
        self,
        categories: Iterable[str] | str | None = None,
        *,
        exclude: Iterable[str] | str = (),
        severity: Severity | Mapping[str, Severity] | None = None,
        recoverable: bool = True,
        streaming: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(recoverable=recoverable, streaming=streaming, **options)
        if isinstance(categories, str):
            categories = [categories]
        if isinstance(exclude, str):
            exclude = [exclude]
        chosen = (
            list(CATEGORIES) if categories is None
            else list(dict.fromkeys(_normalise(c) for c in categories))
        )
        dropped = {_normalise(c) for c in exclude}
        self._names = tuple(n for n in chosen if n not in dropped)
        self._sev = _severity_map(severity, self._names)
        self._late = frozenset(n for n in self._names if CATEGORIES[n].at_completion)
        self._reset()

    @property
    def categories(self) -> tuple[str, ...]:
        return self._names

    def _options(self) -> dict[str, Any]:
        return {
            "categories": list(self._names),
            "severity": dict(self._sev),
            "recoverable": self.recoverable,
            "streaming": self._streaming,  # (as configured: a rule may turn it off)
        }

    def _reset(self) -> None:
        self._scanner = PhraseScanner(self._names)
        self._feed = self._scanner.feed
        self._deferred: list[Violation] = []

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        if offset == self._pos and self._synced:  # the hot path
            self._pos = offset + len(delta)
            hits = self._feed(delta, offset)
            return self._report(hits) if hits else None
        return super().check_delta(delta, offset)

    def _scan(self, delta: str, offset: int) -> list[Violation] | None:
        hits = self._scanner.feed(delta, offset)
        return self._report(hits) if hits else None

    def _report(self, hits: list[Hit]) -> list[Violation] | None:
        now: list[Violation] = []
        for cat, pos, text in hits:
            v = self._violation(
                f"{cat.replace('_', ' ')}: {text!r}", pos, CATEGORIES[cat].suggestion,
                severity=self._sev[cat], context={"category": cat, "matched": text},
            )
            if cat in self._late:
                self._deferred.append(v)
            else:
                now.append(v)
        return now or None

    def _finish(self, content: str) -> list[Violation] | None:
        hits = self._scanner.finish()
        found = list(self._report(hits) or ()) if hits else []
        found.extend(self._deferred)
        self._deferred = []
        return found or None

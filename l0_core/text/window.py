"""Document windows: cut a long document into overlapping chunks, walk them, and run each
through ``l0.run`` with retries, guardrails, drift detection and context restoration.

How a document is cut (linear in its length):

1. The document is measured once in the strategy's unit: characters for ``"char"``; tokens
   (the tokenizer's ``offsets``) for ``"token"``, ``"paragraph"`` and ``"sentence"``.
   Paragraph and sentence starts are found once with one regular-expression pass each.
2. From a chunk's start, ``size`` units ahead is the hard limit. The chunk ends at the last
   boundary before that limit, preferring (in order) a paragraph start in the second half of
   the window (``preserve_paragraphs``), a sentence start (anywhere with
   ``preserve_sentences`` or the ``"sentence"`` / ``"paragraph"`` strategies, else in the
   second half), a word start, and only then the limit itself. A sentence longer than the
   whole window is the one case where a chunk ends inside a sentence (at a word start).
3. The next chunk starts at the first boundary of the same kind at most ``overlap`` units
   before the previous chunk's end, so the overlap is whole paragraphs or sentences; when
   none fits (the last sentence is longer than ``overlap``), a sentence start, then a word
   start. With ``preserve_sentences=True`` every chunk also starts at a sentence start, so
   the overlap is 0 where no whole sentence fits in it.
4. Cuts fall on token starts (a BPE token often begins with the space before a word), so
   no token straddles two chunks and ``token_count`` is exact.

Why ``size`` is in tokens for ``"paragraph"`` and ``"sentence"``: a window exists to fit a
model's context, which is counted in tokens; those strategies differ only in where they cut.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from l0_core.errors import ConfigError, L0Error
from l0_core.runtime.state import State
from l0_core.text.tokenizers import Tokenizer, resolve_tokenizer

__all__ = ["Chunk", "ChunkResult", "Window"]

STRATEGIES = ("token", "char", "paragraph", "sentence")

# A paragraph starts after a blank line; a sentence after terminal punctuation (and closing
# quotes or brackets) and whitespace, when what follows does not start in lower case.
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(r"[.!?\u2026]+[\"'\u2019\u201d)\]]*\s+|[\u3002\uff01\uff1f]+")
_WHITESPACE = re.compile(r"\s+")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "e.g",
                            "i.e", "cf", "fig", "vol", "pp"})
_OPENERS = "\"'\u2018\u201c([*-"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One window of the document: ``text`` is exactly ``document[start:end]``.

    ``token_count`` counts the units of the window's strategy (characters for ``"char"``);
    ``before`` and ``after`` hold surrounding text when the chunk was widened for context
    restoration (empty otherwise): put them in the prompt as context.
    """

    index: int
    text: str
    start: int
    end: int
    token_count: int
    total: int
    before: str = ""
    after: str = ""

    @property
    def is_first(self) -> bool:
        return self.index == 0

    @property
    def is_last(self) -> bool:
        return self.index == self.total - 1

    @property
    def char_count(self) -> int:
        return self.end - self.start

    @property
    def context(self) -> str:
        """``before + text + after``: the chunk with its surrounding text."""
        return self.before + self.text + self.after


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """The outcome of one chunk in :meth:`Window.process_all`.

    ``text`` is the session's output (``""`` when it failed), ``error`` the ``L0Error`` it
    ended with, ``state`` its final state, ``restorations`` how many times the chunk was run
    again with more context after drifting, ``duration`` seconds for all of it.
    """

    chunk: Chunk
    text: str
    error: L0Error | None
    state: State | None
    restorations: int = 0
    duration: float = 0.0
    stream_ids: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.error is None


class _Boundaries:
    """Paragraph and sentence starts of a document, found once, searched by bisection."""

    __slots__ = ("doc", "paragraphs", "sentences")

    def __init__(self, doc: str, need_sentences: bool) -> None:
        self.doc = doc
        self.paragraphs = [m.end() for m in _PARAGRAPH.finditer(doc)]
        self.sentences = self._sentences(doc) if need_sentences else []

    def _sentences(self, doc: str) -> list[int]:
        found = []
        paragraphs = set(self.paragraphs)
        for m in _SENTENCE.finditer(doc):
            end = m.end()
            if end >= len(doc):
                break
            if end in paragraphs or self._starts_sentence(doc, m.start(), end):
                found.append(end)
        return sorted(paragraphs.union(found))  # a paragraph start begins a sentence too

    @staticmethod
    def _starts_sentence(doc: str, stop: int, end: int) -> bool:
        i = end
        n = len(doc)
        while i < n and doc[i] in _OPENERS:
            i += 1
        if i < n and doc[i].islower():
            return False  # "'Do cats eat bats?' and sometimes": the sentence goes on
        word_start = stop
        while word_start > 0 and (doc[word_start - 1].isalpha() or doc[word_start - 1] == "."):
            word_start -= 1
        word = doc[word_start:stop].lower()
        if word == "no":  # "No. 5" abbreviates "number"; "She said no. Then..." ends
            return not (i < n and doc[i].isdigit())
        return word not in _ABBREVIATIONS

    @staticmethod
    def last(starts: Sequence[int], lo: int, hi: int) -> int | None:
        """The last boundary ``p`` with ``lo <= p <= hi``."""
        i = bisect.bisect_right(starts, hi) - 1
        if i >= 0 and starts[i] >= lo:
            return starts[i]
        return None

    @staticmethod
    def first(starts: Sequence[int], lo: int, hi: int) -> int | None:
        """The first boundary ``p`` with ``lo <= p < hi``."""
        i = bisect.bisect_left(starts, lo)
        if i < len(starts) and starts[i] < hi:
            return starts[i]
        return None

    def last_word(self, lo: int, hi: int) -> int | None:
        """The last word start ``p`` with ``lo <= p <= hi`` (C-speed scans, no loop)."""
        doc = self.doc
        start = max(lo - 1, 0)
        i = max(doc.rfind(" ", start, hi - 1), doc.rfind("\n", start, hi - 1),
                doc.rfind("\t", start, hi - 1), doc.rfind("\r", start, hi - 1))
        if i < 0 or i + 1 < lo or doc[i + 1].isspace():
            return None
        return i + 1

    def first_word(self, lo: int, hi: int) -> int | None:
        m = _WHITESPACE.search(self.doc, max(lo - 1, 0), hi)
        while m is not None and m.end() < lo:
            m = _WHITESPACE.search(self.doc, m.end() + 1, hi)
        if m is not None and m.end() < hi:
            return m.end()
        return None


class _Cutter:
    """The cutting rules of one window (see the module documentation)."""

    def __init__(self, doc: str, strategy: str, preserve_paragraphs: bool,
                 preserve_sentences: bool) -> None:
        self.by_paragraph = strategy == "paragraph"
        self.paragraphs = preserve_paragraphs or self.by_paragraph
        self.strict_sentences = preserve_sentences or strategy in ("sentence", "paragraph")
        self.whole_sentences = preserve_sentences  # chunks also start at sentence starts
        self.bounds = _Boundaries(doc, need_sentences=True)

    def end(self, lo: int, min_end: int, hi: int) -> int:
        """Where a chunk starting at ``lo`` ends: a boundary in ``[min_end, hi]``."""
        b = self.bounds
        half = max(min_end, lo + (hi - lo) // 2)
        if self.paragraphs:
            p = b.last(b.paragraphs, min_end if self.by_paragraph else half, hi)
            if p is not None:
                return p
        p = b.last(b.sentences, min_end if self.strict_sentences else half, hi)
        if p is not None:
            return p
        p = b.last_word(min_end, hi)
        return p if p is not None else hi

    def overlap_start(self, lo: int, hi: int) -> int | None:
        """Where the next chunk starts: the first boundary in ``[lo, hi)`` of the kind the
        chunks are cut at, else a sentence start, else (unless ``preserve_sentences``) a
        word start (``None``: no overlap)."""
        b = self.bounds
        if self.by_paragraph:
            p = b.first(b.paragraphs, lo, hi)
            if p is not None:
                return p
        if self.strict_sentences:  # (a paragraph strategy falls back to a sentence start)
            p = b.first(b.sentences, lo, hi)
            if p is not None or self.whole_sentences:
                return p
        return b.first_word(lo, hi)  # a sentence longer than the overlap: a word start


def _validate(size: Any, overlap: Any, strategy: Any) -> None:
    if type(size) is not int or size < 1:
        raise ConfigError(f"size must be a positive int (in the strategy's unit); got {size!r}")
    if type(overlap) is not int or not 0 <= overlap < size:
        raise ConfigError(
            f"overlap must be an int from 0 to size - 1 ({size - 1}); got {overlap!r}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(map(repr, STRATEGIES))}; "
                          f"got {strategy!r}")


def _snap(units: Sequence[int], pos: int, floor: int) -> int:
    """``pos`` moved back to the start of the token it falls in (a BPE token often starts
    with the space before a word), unless that is before ``floor``: no token straddles a
    cut, so each chunk's token count is the count of its own tokens."""
    k = bisect.bisect_right(units, pos) - 1
    return units[k] if k >= 0 and units[k] >= floor else pos


def _cut(doc: str, units: Sequence[int], size: int, overlap: int,
         cutter: _Cutter) -> list[tuple[int, int, int]]:
    """``(start, end, units)`` of every chunk; ``units`` are the unit starts plus the end."""
    n_units = len(units) - 1
    spans: list[tuple[int, int, int]] = []
    start, prev_end = 0, 0
    while True:
        a = bisect.bisect_left(units, start)
        b = a + size
        if b >= n_units:
            spans.append((start, len(doc), n_units - a))
            return spans
        min_end = max(prev_end + 1, start + 1)
        # (a tokenizer may give several tokens one start, as tiktoken does inside a
        # multi-byte character: the limit then never falls behind the previous end)
        end = _snap(units, cutter.end(start, min_end, max(units[b], min_end)), min_end)
        spans.append((start, end, bisect.bisect_left(units, end) - a))
        prev_end = end
        next_start = end
        if overlap:
            lower = units[max(bisect.bisect_left(units, end) - overlap, 0)]
            found = cutter.overlap_start(max(lower, start + 1), end)
            if found is not None:
                next_start = _snap(units, found, start + 1)
        start = next_start


class Window:
    """A document cut into chunks, with a cursor to walk them. Build one with
    :meth:`Window.create`; iterate it, index it, or move with :meth:`next`, :meth:`prev`,
    :meth:`jump`."""

    def __init__(self, document: str, chunks: Sequence[Chunk], *, size: int, overlap: int,
                 strategy: str, tokenizer: Tokenizer | None) -> None:
        self.document = document
        self.chunks: tuple[Chunk, ...] = tuple(chunks)
        self.size = size
        self.overlap = overlap
        self.strategy = strategy
        self.tokenizer = tokenizer
        self.index = 0

    @classmethod
    def create(
        cls,
        document: str,
        size: int = 2000,
        overlap: int = 200,
        strategy: str = "token",
        *,
        preserve_paragraphs: bool = True,
        preserve_sentences: bool = False,
        tokenizer: Tokenizer | str | None = "auto",
    ) -> Window:
        """Cut ``document`` into chunks of at most ``size`` units, ``overlap`` units shared
        between neighbours. ``size`` is in characters for ``"char"``, in tokens otherwise.
        ``tokenizer``: ``"auto"`` (tiktoken when its encoding is cached, else the estimate),
        ``"estimate"``, ``"tiktoken[:<encoding>]"``, a ``tiktoken.Encoding`` or any object
        with ``count(text)`` and ``offsets(text)``."""
        if not isinstance(document, str):
            raise ConfigError(f"document must be a str; got {type(document).__name__}")
        _validate(size, overlap, strategy)
        if strategy == "char" and tokenizer not in (None, "auto"):
            resolve_tokenizer(tokenizer)  # not used, but a wrong one is still an error
        tok = None if strategy == "char" else resolve_tokenizer(tokenizer)
        if not document.strip():
            return cls(document, (), size=size, overlap=overlap, strategy=strategy,
                       tokenizer=tok)
        if tok is None:
            units: Sequence[int] = range(len(document) + 1)
        else:
            starts = list(tok.offsets(document))
            if starts and starts[0] > 0:
                starts[0] = 0  # leading whitespace belongs to the first token
            units = [*starts, len(document)]
        cutter = _Cutter(document, strategy, preserve_paragraphs, preserve_sentences)
        spans = _cut(document, units, size, overlap, cutter)
        total = len(spans)
        chunks = [Chunk(i, document[s:e], s, e, n, total) for i, (s, e, n) in enumerate(spans)]
        return cls(document, chunks, size=size, overlap=overlap, strategy=strategy,
                   tokenizer=tok)

    # -- sequence and navigation -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.chunks)

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self.chunks)

    def __getitem__(self, index: int) -> Chunk:
        return self.chunks[index]

    def __repr__(self) -> str:
        return (f"Window({len(self.chunks)} chunks, size={self.size}, overlap={self.overlap}, "
                f"strategy={self.strategy!r}, at={self.index})")

    @property
    def current(self) -> Chunk | None:
        """The chunk under the cursor (``None`` for an empty document)."""
        return self.chunks[self.index] if self.chunks else None

    def has_next(self) -> bool:
        return self.index + 1 < len(self.chunks)

    def has_prev(self) -> bool:
        return self.index > 0

    def next(self) -> Chunk | None:
        """Move to the next chunk and return it (``None`` at the end; the cursor stays)."""
        if not self.has_next():
            return None
        self.index += 1
        return self.chunks[self.index]

    def prev(self) -> Chunk | None:
        """Move to the previous chunk and return it (``None`` at the start)."""
        if not self.has_prev():
            return None
        self.index -= 1
        return self.chunks[self.index]

    def jump(self, index: int) -> Chunk:
        """Move to chunk ``index`` (negative counts from the end) and return it."""
        n = len(self.chunks)
        if type(index) is not int or not -n <= index < n:
            raise ConfigError(f"jump: index must be an int from {-n} to {n - 1}; got {index!r}")
        self.index = index % n
        return self.chunks[self.index]

    def reset(self) -> None:
        self.index = 0

    def with_context(self, index: int, before: int = 1, after: int = 1) -> Chunk:
        """Chunk ``index`` with the text of up to ``before`` chunks before it and ``after``
        chunks after it in its ``before`` / ``after`` fields (overlap not repeated);
        negative ``index`` counts from the end."""
        n = len(self.chunks)
        if type(index) is not int or not -n <= index < n:
            raise ConfigError(f"with_context: index must be an int from {-n} to {n - 1}; got "
                              f"{index!r}")
        index %= n
        chunk = self.chunks[index]
        first = self.chunks[max(index - before, 0)]
        last = self.chunks[min(index + after, len(self.chunks) - 1)]
        doc = self.document
        return Chunk(chunk.index, chunk.text, chunk.start, chunk.end, chunk.token_count,
                     chunk.total, doc[first.start:chunk.start] if before > 0 else "",
                     doc[chunk.end:last.end] if after > 0 else "")

    # -- processing ------------------------------------------------------------------------

    async def process_all(
        self,
        factory_for_chunk: Callable[[Chunk], Any],
        *,
        concurrency: int = 4,
        restore_context: int = 2,
        **run_options: Any,
    ) -> list[ChunkResult]:
        """Run every chunk through ``l0.run`` (``concurrency`` at a time); results in chunk
        order. See ``docs/windows.md``."""
        from l0_core.text.processing import process_chunks

        return await process_chunks(self, factory_for_chunk, concurrency=concurrency,
                                    restore_context=restore_context, run_options=run_options)

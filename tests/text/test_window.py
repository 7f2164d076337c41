"""Document windows on a real long document: a public-domain book chapter (see data/README.md)."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest

import l0_core as l0
from l0_core.text.tokenizers import EstimateTokenizer

DOC = (Path(__file__).parent / "data" / "alice-chapter-1.txt").read_text(encoding="utf-8")
EST = EstimateTokenizer()
# where a sentence may end: terminal punctuation, closing quotes or brackets
SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


def units(text: str, strategy: str) -> int:
    return len(text) if strategy == "char" else EST.count(text)


def check_cover(window: l0.Window, doc: str, size: int, overlap: int, strategy: str) -> None:
    """Exact coverage: chunks are slices of the document, together they hold all of it,
    neighbours share at most ``overlap`` units, and no chunk is over ``size``."""
    chunks = list(window)
    assert chunks, "no chunks"
    assert chunks[0].start == 0 and chunks[-1].end == len(doc)
    for i, chunk in enumerate(chunks):
        assert chunk.text == doc[chunk.start:chunk.end]
        assert chunk.index == i and chunk.total == len(chunks)
        assert chunk.token_count == units(chunk.text, strategy) <= size
    for prev, nxt in itertools.pairwise(chunks):
        assert prev.start < nxt.start <= prev.end < nxt.end  # no gap, always progress
        shared = doc[nxt.start:prev.end]
        assert units(shared, strategy) <= overlap
    # together they hold the whole document, in order, once the overlaps are removed
    rebuilt = chunks[0].text + "".join(
        nxt.text[prev.end - nxt.start:] for prev, nxt in itertools.pairwise(chunks))
    assert rebuilt == doc


@pytest.mark.parametrize("strategy", ["token", "char", "sentence", "paragraph"])
@pytest.mark.parametrize(("size", "overlap"), [(120, 0), (300, 40), (800, 150)])
def test_exact_coverage_and_overlap(strategy: str, size: int, overlap: int) -> None:
    if strategy == "char":
        size, overlap = size * 4, overlap * 4
    window = l0.Window.create(DOC, size=size, overlap=overlap, strategy=strategy,
                              tokenizer="estimate")
    check_cover(window, DOC, size, overlap, strategy)
    assert window.strategy == strategy and len(window) > 1


def test_overlap_is_really_shared() -> None:
    window = l0.Window.create(DOC, size=300, overlap=60, tokenizer="estimate")
    shared = [EST.count(DOC[b.start:a.end]) for a, b in zip(window, list(window)[1:],
                                                                 strict=False)]
    assert all(0 < n <= 60 for n in shared)
    assert sum(shared) / len(shared) > 30  # most of the allowed overlap is used


def test_no_split_inside_a_sentence_when_asked() -> None:
    window = l0.Window.create(DOC, size=200, overlap=30, preserve_sentences=True,
                              tokenizer="estimate")
    check_cover(window, DOC, 200, 30, "token")
    for chunk in window:
        body = chunk.text.rstrip()
        if not chunk.is_last:
            assert SENTENCE_END.search(body) or body.endswith("*"), repr(body[-60:])
        # every chunk starts where a sentence starts
        assert chunk.is_first or re.match(r"[\"'(\[*]*\s*[A-Z*]", chunk.text), chunk.text[:40]
    # without preserve_sentences a window shorter than the long sentences cuts inside them
    loose = l0.Window.create(DOC, size=40, overlap=0, tokenizer="estimate")
    assert any(not SENTENCE_END.search(c.text.rstrip()) for c in list(loose)[:-1])


def test_sentence_strategy_keeps_dialogue_sentences_whole() -> None:
    # "'Do cats eat bats?' and sometimes" is one sentence: a '?' followed by lower case
    window = l0.Window.create(DOC, size=400, overlap=0, strategy="sentence",
                              tokenizer="estimate")
    starts = [c.text[:25] for c in window]
    assert not any(s.startswith("and sometimes") for s in starts)
    assert all(not s[0].islower() for s in starts), [s for s in starts if s[0].islower()]


def test_a_sentence_longer_than_the_window_is_cut_at_a_word() -> None:
    doc = "Short one. " + "word " * 300 + "end. Next sentence here."
    window = l0.Window.create(doc, size=50, overlap=0, strategy="sentence",
                              tokenizer="estimate")
    check_cover(window, doc, 50, 0, "token")
    assert all(c.text.endswith(" ") or c.is_last for c in window)


def test_paragraph_strategy_cuts_at_paragraphs() -> None:
    window = l0.Window.create(DOC, size=400, overlap=0, strategy="paragraph",
                              tokenizer="estimate")
    check_cover(window, DOC, 400, 0, "paragraph")
    assert all(c.text.endswith("\n\n") for c in list(window)[:-1])


def test_char_size_is_characters() -> None:
    window = l0.Window.create(DOC, size=1000, overlap=100, strategy="char")
    assert window.tokenizer is None
    assert all(c.char_count == c.token_count <= 1000 for c in window)
    assert max(c.char_count for c in window) > 900
    # paragraphs preferred: most chunks end at a blank line
    assert sum(c.text.endswith("\n\n") for c in window) > len(window) * 2 // 3


def test_hard_cut_when_nothing_else_fits() -> None:
    doc = "x" * 1000  # no spaces, no sentences
    window = l0.Window.create(doc, size=128, overlap=16, strategy="char")
    assert [c.char_count for c in window][:3] == [128, 128, 128]
    check_cover(window, doc, 128, 16, "char")


def test_navigation() -> None:
    window = l0.Window.create(DOC, size=300, overlap=30, tokenizer="estimate")
    n = len(window)
    assert window.current is window[0] and not window.has_prev() and window.has_next()
    assert window.prev() is None and window.index == 0
    assert window.next() is window[1] and window.index == 1
    assert window.prev() is window[0]
    assert window.jump(-1) is window[n - 1] and window.index == n - 1
    assert window.next() is None and window.index == n - 1 and not window.has_next()
    window.reset()
    assert window.index == 0
    assert list(window) == [window[i] for i in range(n)]
    assert window[-1].is_last and window[0].is_first
    with pytest.raises(l0.ConfigError, match="jump: index must be an int from"):
        window.jump(n)
    wide = window.with_context(2, before=1, after=1)
    assert wide.before == DOC[window[1].start:window[2].start]
    assert wide.after == DOC[window[2].end:window[3].end]
    assert wide.context == DOC[window[1].start:window[3].end]
    assert window.with_context(0).before == ""


def test_empty_document() -> None:
    window = l0.Window.create("  \n ")
    assert len(window) == 0 and window.current is None and window.next() is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 0}, "size must be a positive int"),
    ({"size": 10, "overlap": 10}, "overlap must be an int from 0 to size - 1"),
    ({"overlap": -1}, "overlap must be an int from 0"),
    ({"strategy": "words"}, "strategy must be one of 'token', 'char'"),
    ({"tokenizer": "gpt5"}, "unknown tokenizer 'gpt5'"),
    ({"tokenizer": 42}, "tokenizer must be 'auto', 'estimate'"),
])
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(l0.ConfigError, match=message):
        l0.Window.create(DOC, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(l0.ConfigError, match="document must be a str"):
        l0.Window.create(b"bytes")  # type: ignore[arg-type]


class WordTokenizer:
    """A tokenizer plugin: one token per whitespace-separated word."""

    name = "words"

    def count(self, text: str) -> int:
        return len(text.split())

    def offsets(self, text: str) -> list[int]:
        return [m.start() for m in re.finditer(r"\S+", text)]


def test_custom_tokenizer() -> None:
    window = l0.Window.create(DOC, size=100, overlap=10, tokenizer=WordTokenizer())
    assert window.tokenizer is not None and window.tokenizer.name == "words"
    for chunk in window:
        assert chunk.token_count == len(chunk.text.split()) <= 100
    assert max(c.token_count for c in window) > 90


def test_windowing_a_megabyte_is_fast() -> None:
    big = (DOC * (1_000_000 // len(DOC) + 1))[:1_000_000]
    started = time.perf_counter()
    window = l0.Window.create(big, size=2000, overlap=200, tokenizer="estimate")
    elapsed = time.perf_counter() - started
    assert len(window) > 100
    assert elapsed < 1.5, f"windowing 1 MB took {elapsed:.2f} s"  # ~0.1 s on a laptop core


@pytest.mark.parametrize("strategy", ["token", "char", "sentence", "paragraph"])
@pytest.mark.parametrize(("size", "overlap"), [(300, 50), (200, 30), (800, 150)])
def test_every_strategy_overlaps_every_pair(strategy: str, size: int, overlap: int) -> None:
    if strategy == "char":
        size, overlap = size * 4, overlap * 4
    window = l0.Window.create(DOC, size=size, overlap=overlap, strategy=strategy,
                              tokenizer="estimate")
    check_cover(window, DOC, size, overlap, strategy)
    shared = [units(DOC[b.start:a.end], strategy) for a, b in itertools.pairwise(window)]
    assert all(0 < n <= overlap for n in shared), shared


def test_paragraph_overlap_prefers_paragraphs_then_sentences() -> None:
    doc = "\n\n".join(f"Paragraph {i} starts here. It has a second sentence, a bit longer "
                      f"than the first one. It has a third one too." for i in range(30))
    window = l0.Window.create(doc, size=80, overlap=20, strategy="paragraph",
                              tokenizer="estimate")
    starts = [c.text[:14] for c in list(window)[1:]]
    assert starts and all(s.startswith(("Paragraph", "It has")) for s in starts), starts
    assert any(s.startswith("It has") for s in starts)  # a paragraph is longer than 20


def test_preserve_sentences_starts_chunks_at_sentences_even_without_overlap() -> None:
    doc = ("Short one. " + "This sentence is far longer than the overlap allows it to be, "
           "with many words in it. ") * 20
    window = l0.Window.create(doc, size=40, overlap=5, preserve_sentences=True,
                              tokenizer="estimate")
    assert all(c.text.startswith(("Short", "This")) for c in window)
    loose = l0.Window.create(doc, size=40, overlap=5, strategy="sentence", tokenizer="estimate")
    assert all(a.end > b.start for a, b in itertools.pairwise(loose))


def test_with_context_negative_index() -> None:
    window = l0.Window.create(DOC, size=300, overlap=30, tokenizer="estimate")
    n = len(window)
    last = window.with_context(-1)
    assert last == window.with_context(n - 1)
    assert last.before == DOC[window[n - 2].start:window[n - 1].start] and last.after == ""
    assert window.with_context(-n).index == 0
    for bad in (n, -n - 1):
        with pytest.raises(l0.ConfigError, match="with_context: index must be an int from"):
            window.with_context(bad)


class SpaceFirstTokenizer:
    """Like GPT tokenizers: a word's token starts with the space before it."""

    name = "space-first"
    pattern = re.compile(r" ?[^\s]+|\s+")

    def count(self, text: str) -> int:
        return len(self.pattern.findall(text))

    def offsets(self, text: str) -> list[int]:
        return [m.start() for m in self.pattern.finditer(text)]


@pytest.mark.parametrize("strategy", ["token", "sentence", "paragraph"])
def test_token_count_is_the_tokenizers_count_of_the_chunk(strategy: str) -> None:
    tok = SpaceFirstTokenizer()
    window = l0.Window.create(DOC, size=120, overlap=20, strategy=strategy, tokenizer=tok)
    assert len(window) > 5
    for chunk in window:
        assert chunk.token_count == tok.count(chunk.text) <= 120, chunk.text[-30:]
    rebuilt = window[0].text + "".join(
        b.text[a.end - b.start:] for a, b in itertools.pairwise(window))
    assert rebuilt == DOC


def test_no_is_not_an_abbreviation_but_number_is() -> None:
    doc = "She said no. Then she left the room quietly. See No. 5 for details. The end came."
    window = l0.Window.create(doc, size=8, overlap=0, strategy="sentence",
                              tokenizer="estimate")
    assert [c.text for c in window] == [
        "She said no. ", "Then she left the room quietly. ", "See No. 5 for details. ",
        "The end came."]
    # "No. 5" is not a sentence end: a window too small for the sentence cuts at a word
    number = l0.Window.create("See No. 5 for details.", size=5, overlap=0,
                              strategy="sentence", tokenizer="estimate")
    assert number[0].text == "See No. 5 "  # (old: "See No. ", a sentence end)


def test_char_strategy_still_validates_the_tokenizer() -> None:
    with pytest.raises(l0.ConfigError, match="unknown tokenizer 'bogus'"):
        l0.Window.create(DOC, strategy="char", tokenizer="bogus")
    with pytest.raises(l0.ConfigError, match="tokenizer must be"):
        l0.Window.create(DOC, strategy="char", tokenizer=42)  # type: ignore[arg-type]
    assert l0.Window.create(DOC, strategy="char", tokenizer="estimate").tokenizer is None

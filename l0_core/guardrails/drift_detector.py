"""L0's built-in drift detector: ``l0.run(..., drift=True)``.

It watches the text as it streams and reports, once each, at onset:

=====================  ==============================================================
drift type             signal
=====================  ==============================================================
``meta_commentary``    "as an AI", "as a language model", "I'm an AI ..."
``hedging``            a line starting "Sure", "Certainly", "Of course", "Absolutely"...
``format_collapse``    a line starting "Here is the", "Let me", "Below is"...
``repetition``         the recent word n-grams are mostly repeats (the model loops)
``entropy_spike``      the character entropy of the recent text jumps far above the
                       text's own baseline (garbage, encoding noise)
``tone_shift``         informal markers ("lol", "gonna", "!!", emoji) appear in a
                       text that had none
``markdown_collapse``  a densely formatted markdown answer turns into a wall of text
                       (no markdown markers and no line breaks for ``collapse_window``
                       characters)
=====================  ==============================================================

Everything is incremental and O(1) amortised per character: phrases use the
guardrails' :class:`~l0_core.guardrails.rules.patterns.PhraseScanner` (a few ``in`` tests per
delta, then a regular expression only around a key); the statistical signals take one
*sample* per ``sample_chars`` characters of new text, kept in bounded rolling windows
(deques with running sums, a running mean and variance). Nothing ever rescans the text.

A sample costs a handful of C-level calls, no Python loop over its characters or
words: the words come from one ``bytes.translate`` (lowercase, punctuation to spaces)
and one ``split``; the n-grams that start at every other word are hashed by
``map(hash, zip(...))`` and counted with one ``set``; the character counts for the
entropy are one C counting loop over every fourth character; the markers are ``in`` tests
(the exact marker count is only needed for the first ``window`` characters: when they
were not formatted, the markdown signal can never fire and stops sampling).

Each type has a ``detect_*`` switch.
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import Any

from l0_core.guardrails.drift import DriftResult
from l0_core.guardrails.rules.patterns import PhraseScanner

try:  # the C loop behind collections.Counter, without Counter's Python-level set-up
    from collections import _count_elements  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters
    def _count_elements(mapping: dict[str, int], iterable: str) -> None:
        get = mapping.get
        for c in iterable:
            mapping[c] = get(c, 0) + 1

__all__ = ["Drift", "DriftDetector"]

_INFORMAL = (
    "lol lmao rofl omg btw imo tbh gonna wanna gotta kinda sorta dunno y'all ain't dude bro "
    "yeah yep yup nope hey haha hahaha hehe wow awesome cool"
)
_INFORMAL_WORDS = frozenset(_INFORMAL.split())
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]")
# punctuation becomes a space, so that words are compared without it
_PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~"
_WORDS_ONLY = str.maketrans(dict.fromkeys(_PUNCTUATION, " "))


def _ascii_words_table() -> bytes:
    """``str.lower`` and ``_WORDS_ONLY`` in one ``bytes.translate`` table (ASCII text)."""
    table = bytearray(range(256))
    for code in range(ord("A"), ord("Z") + 1):
        table[code] = code + 32
    for char in _PUNCTUATION:
        table[ord(char)] = 32
    return bytes(table)


_ASCII_WORDS = _ascii_words_table()
# markdown markers, counted with str.count (cheap, approximate: enough for a density)
_MD_MARKERS = ("\n#", "\n- ", "\n* ", "\n+ ", "\n> ", "\n|", "```", "~~~", "**", "`", "](",
               "\n1. ", "\n2. ", "\n3. ")
_CLOG_SIZE = 4096
_CLOG = [0.0] + [c * math.log2(c) for c in range(1, _CLOG_SIZE)]  # c * log2(c)


def _clog(c: int) -> float:
    return c * math.log2(c)


class _Rolling:
    """A window of (characters, count) samples covering at least ``size`` characters."""

    __slots__ = ("chars", "count", "dropped_chars", "dropped_count", "items", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[tuple[int, int]] = deque()
        self.chars = 0
        self.count = 0
        self.dropped_chars = 0  # what left the window (the baseline)
        self.dropped_count = 0

    def push(self, chars: int, count: int) -> None:
        self.items.append((chars, count))
        self.chars += chars
        self.count += count
        items = self.items
        while len(items) > 1 and self.chars - items[0][0] >= self.size:
            old_chars, old_count = items.popleft()
            self.chars -= old_chars
            self.count -= old_count
            self.dropped_chars += old_chars
            self.dropped_count += old_count


def _phrase_scanner(**types: bool) -> PhraseScanner | None:
    """The scanner of the phrase types switched on (``None``: none is)."""
    names = [name for name, on in types.items() if on]
    return PhraseScanner(names) if names else None


class DriftDetector:
    """The built-in drift detector (``drift=True``). A fresh one is made per attempt.

    :param window: characters of recent text for the tone and markdown signals.
    :param sample_chars: new text per statistical sample.
    :param sample_every: once the baselines are in (the first ``window``
        characters, and ``min_samples + entropy_window`` samples), one block
        of ``sample_chars`` characters in every ``sample_every`` is sampled
        (``1``: all the text). The statistics are estimates; a loop, garbage
        or a change of tone lasts longer than the blocks left out, and this
        halves their cost per token on long outputs.
    :param repetition_window: words in the repetition window (its n-grams are
        the ones that start at every other word: half as many).
    :param repetition_ngram: words per n-gram.
    :param repetition_threshold: the share of repeated n-grams in a full
        window that counts as looping.
    :param entropy_window: samples averaged for the recent entropy.
    :param entropy_threshold: how many standard deviations above the baseline.
    :param entropy_min_increase: ... and at least this many bits per character.
    :param min_samples: baseline samples needed before entropy or tone can drift.
    :param markdown_min_markers: markdown markers the first ``window``
        characters must have for a later collapse to count.
    :param collapse_window: characters without any marker or line break that make
        a collapse.
    :param tone_min_markers: informal markers in the recent window for a tone shift.
    """

    ENTROPY_STRIDE = 4  # the entropy of a sample is estimated on every 4th character

    def __init__(
        self,
        *,
        detect_meta_commentary: bool = True,
        detect_tone_shift: bool = True,
        detect_repetition: bool = True,
        detect_entropy_spike: bool = True,
        detect_format_collapse: bool = True,
        detect_markdown_collapse: bool = True,
        detect_hedging: bool = True,
        window: int = 500,
        sample_chars: int = 256,
        sample_every: int = 2,
        repetition_window: int = 100,
        repetition_ngram: int = 5,
        repetition_threshold: float = 0.6,
        entropy_window: int = 2,
        entropy_threshold: float = 4.0,
        entropy_min_increase: float = 1.0,
        min_samples: int = 8,
        markdown_min_markers: int = 5,
        collapse_window: int = 1000,
        tone_min_markers: int = 3,
    ) -> None:
        if sample_chars < 8 or window < sample_chars:
            raise ValueError("drift: sample_chars must be >= 8 and window >= sample_chars")
        if sample_every < 1:
            raise ValueError("drift: sample_every must be >= 1")
        if repetition_ngram < 1 or repetition_window < repetition_ngram:
            raise ValueError("drift: repetition_window must be >= repetition_ngram >= 1")
        self._options: dict[str, Any] = {
            "detect_meta_commentary": detect_meta_commentary,
            "detect_tone_shift": detect_tone_shift,
            "detect_repetition": detect_repetition,
            "detect_entropy_spike": detect_entropy_spike,
            "detect_format_collapse": detect_format_collapse,
            "detect_markdown_collapse": detect_markdown_collapse,
            "detect_hedging": detect_hedging,
            "window": window,
            "sample_chars": sample_chars,
            "sample_every": sample_every,
            "repetition_window": repetition_window,
            "repetition_ngram": repetition_ngram,
            "repetition_threshold": repetition_threshold,
            "entropy_window": entropy_window,
            "entropy_threshold": entropy_threshold,
            "entropy_min_increase": entropy_min_increase,
            "min_samples": min_samples,
            "markdown_min_markers": markdown_min_markers,
            "collapse_window": collapse_window,
            "tone_min_markers": tone_min_markers,
        }
        self._scanner = _phrase_scanner(
            meta_commentary=detect_meta_commentary, hedging=detect_hedging,
            format_collapse=detect_format_collapse,
        )
        self._repetition = detect_repetition
        self._entropy = detect_entropy_spike
        self._tone = detect_tone_shift
        self._markdown = detect_markdown_collapse
        self._sampling = detect_repetition or detect_entropy_spike or detect_tone_shift or (
            detect_markdown_collapse
        )
        self._pos = -1  # where the next delta should start (-1: nothing seen)
        self._reported: set[str] = set()
        self._init_sampling(window, sample_chars, sample_every,
                            full=max(window, (min_samples + entropy_window) * sample_chars))
        self._init_repetition(repetition_window, repetition_ngram, repetition_threshold)
        self._init_entropy(entropy_window, entropy_threshold, entropy_min_increase, min_samples)
        self._init_markers(window, tone_min_markers, markdown_min_markers, collapse_window)

    def _init_sampling(self, window: int, sample_chars: int, every: int, full: int) -> None:
        self._window = window
        self._sample_chars = sample_chars
        self._every = every
        self._covered = 0  # characters sampled so far
        self._skip = 0  # characters still to leave out before the next sample
        # the text sampled in full first: the markdown baseline and the entropy baseline
        self._full = full
        self._parts: list[str] = []
        self._plen = 0
        self.work = 0  # characters sampled (for tests: O(text))

    def _init_repetition(self, window: int, ngram: int, threshold: float) -> None:
        """Rolling word n-grams."""
        self._n = ngram
        # (n-grams are taken at every other word: half as many cover the same words)
        self._rep_window = max(1, window // 2)
        self._rep_threshold = threshold
        self._carry = ""  # a word cut by the end of the last sample
        self._prev: list[str] = []  # the last n-1 words
        self._grams: deque[int] = deque(maxlen=self._rep_window)  # recent n-gram hashes
        self._distinct = 0  # at most the distinct n-grams in the window (the last count)

    def _init_entropy(
        self, window: int, threshold: float, min_increase: float, min_samples: int
    ) -> None:
        """Recent samples, and a running mean/variance (Welford) of older ones."""
        self._e_window = window
        self._e_threshold = threshold
        self._e_min = min_increase
        self._min_samples = min_samples
        self._e_recent: deque[float] = deque()
        self._e_recent_sum = 0.0
        self._e_n = 0
        self._e_mean = 0.0
        self._e_m2 = 0.0

    def _init_markers(
        self, window: int, tone_min: int, markdown_min: int, collapse_window: int
    ) -> None:
        """Tone and markdown: rolling marker counts."""
        self._tone_window = _Rolling(window)
        self._tone_min = tone_min
        self._md_early = 0
        self._md_early_chars = 0
        self._md_min = markdown_min
        self._md_recent = _Rolling(collapse_window)
        self._md_total = 0

    def create(self) -> DriftDetector:
        """A fresh detector with the same options (the runtime calls this per attempt)."""
        return DriftDetector(**self._options)

    @property
    def state_size(self) -> int:
        """Items held in the rolling windows (bounded, whatever the text length)."""
        return (
            self._plen
            + len(self._carry)
            + len(self._prev)
            + len(self._grams)
            + len(self._e_recent)
            + len(self._tone_window.items)
            + len(self._md_recent.items)
            + (self._scanner.buffered if self._scanner is not None else 0)
        )

    # -- the protocol -------------------------------------------------------------------

    def check_delta(self, delta: str, offset: int) -> DriftResult | None:
        if not delta:
            return None
        if offset != self._pos and self._pos >= 0:  # a gap: the samples restart
            self._parts, self._plen, self._carry, self._prev = [], 0, "", []
        self._pos = offset + len(delta)
        found: dict[str, float] | None = None
        scanner = self._scanner
        if scanner is not None:
            hits = scanner.feed(delta, offset)
            if hits:
                found = {}
                for category, _, _ in hits:
                    found.setdefault(category, 0.9)
        if self._sampling:
            found = self._feed_samples(delta, found)
        if not found:
            return None
        reported = self._reported
        new = {t: c for t, c in found.items() if t not in reported}
        if not new:
            return None
        reported.update(new)
        return DriftResult(list(new), max(new.values()), {"types": new, "offset": offset})

    def _feed_samples(self, delta: str, found: dict[str, float] | None) -> dict[str, float] | None:
        """The statistical signals: ``delta`` goes into the next sample (once the
        baselines are in, what falls between two sampled blocks is left out), and a
        sample that has ``sample_chars`` characters is taken."""
        if self._skip:  # between two sampled blocks
            if len(delta) <= self._skip:
                gap, delta = delta, ""
                self._skip -= len(gap)
            else:
                gap, delta = delta[: self._skip], delta[self._skip :]
                self._skip = 0
            if self._markdown:  # (line breaks are cheap to see: the window sees them all)
                self._markdown_gap(gap)
        if delta:
            self._parts.append(delta)
            self._plen += len(delta)
            if self._plen >= self._sample_chars:
                parts = self._parts
                text = parts[0] if len(parts) == 1 else "".join(parts)
                self._parts = []
                self._plen = 0
                found = self._sample(text, found)
                self._covered += len(text)
                if self._every > 1 and self._covered >= self._full:
                    self._skip = (self._every - 1) * len(text)
                    self._carry, self._prev = "", []  # (no word or n-gram spans a gap)
        return found

    # -- samples ----------------------------------------------------------------------------

    def _sample(self, text: str, found: dict[str, float] | None) -> dict[str, float] | None:
        self.work += len(text)
        reported = self._reported
        repetition = self._repetition and "repetition" not in reported
        tone = self._tone and "tone_shift" not in reported
        ascii_only = text.isascii()
        words: list[str] | None = None
        if repetition or tone:
            if ascii_only:  # the same words as below, with one C table lookup per byte
                words = text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
            else:
                words = text.lower().translate(_WORDS_ONLY).split()
        score: float | None
        if repetition:
            assert words is not None
            score = self._words(text, words)  # (joins a word cut by the last sample)
            if score is not None:
                found = found or {}
                found["repetition"] = score
        if self._entropy and "entropy_spike" not in reported:
            score = self._entropy_sample(text)
            if score is not None:
                found = found or {}
                found["entropy_spike"] = score
        if tone:
            assert words is not None
            score = self._tone_sample(text, words, ascii_only)
            if score is not None:
                found = found or {}
                found["tone_shift"] = score
        if self._markdown and "markdown_collapse" not in reported:
            score = self._markdown_sample(text)
            if score is not None:
                found = found or {}
                found["markdown_collapse"] = score
        return found

    def _words(self, text: str, words: list[str]) -> float | None:
        # a word cut by the end of the sample ends in the next one
        cut = words.pop() if words and not text[-1].isspace() and len(words[-1]) <= 64 else ""
        if self._carry:
            if words and not text[0].isspace():
                words[0] = self._carry + words[0]
            else:
                words.insert(0, self._carry)
        self._carry = cut
        n = self._n
        seq = self._prev + words if self._prev else words
        if len(seq) < n:
            self._prev = seq
            return None
        self._prev = seq[len(seq) - n + 1 :] if n > 1 else []
        grams = self._grams  # a bounded deque: the oldest fall out
        size = len(grams)
        # The n-grams that start at every other word: in a loop of any period they
        # repeat as the whole sequence does, at half the cost of building and hashing
        # each one. (Which parity is taken changes from sample to sample; a loop's
        # n-grams repeat in either.)
        new = (len(seq) - n + 2) // 2
        if n == 5:  # (the default, spelled out: no generator)
            grams.extend(map(hash, zip(seq[::2], seq[1::2], seq[2::2], seq[3::2], seq[4::2],
                                       strict=False)))
        else:
            grams.extend(map(hash, zip(*[seq[i::2] for i in range(n)], strict=False)))
        if len(grams) < self._rep_window:
            return None
        # each n-gram that left the window took at most one distinct n-gram with it: when
        # that many fewer than last counted are still too many to loop, no need to count
        self._distinct -= size + new - len(grams)
        if 1.0 - self._distinct / len(grams) < self._rep_threshold:
            return None
        distinct = self._distinct = len(set(grams))  # O(window): O(1) per character
        repeated = 1.0 - distinct / len(grams)
        if repeated >= self._rep_threshold:
            return min(1.0, repeated)
        return None

    def _entropy_sample(self, text: str) -> float | None:
        # Every ENTROPY_STRIDE-th character: counting is the costliest step of a sample
        # (~27 ns a character), and a quarter of the characters estimates the entropy
        # well enough to see garbage, whose characters are spread over many more symbols.
        chars = text[:: self.ENTROPY_STRIDE]
        n = len(chars)
        counts: dict[str, int] = {}
        _count_elements(counts, chars)  # (summed in any order, as a set's)
        table = _CLOG.__getitem__ if n < _CLOG_SIZE else _clog
        h = math.log2(n) - sum(map(table, counts.values())) / n
        recent = self._e_recent
        recent.append(h)
        self._e_recent_sum += h
        if len(recent) > self._e_window:
            old = recent.popleft()
            self._e_recent_sum -= old
            # Welford: the baseline of everything older than the recent window
            self._e_n += 1
            d = old - self._e_mean
            self._e_mean += d / self._e_n
            self._e_m2 += d * (old - self._e_mean)
        if self._e_n < self._min_samples or len(recent) < self._e_window:
            return None
        mean_recent = self._e_recent_sum / len(recent)
        std = math.sqrt(self._e_m2 / (self._e_n - 1)) if self._e_n > 1 else 0.0
        rise = mean_recent - self._e_mean
        if rise >= self._e_min and rise >= self._e_threshold * std:
            return min(1.0, 0.5 + rise / (4.0 * self._e_min))
        return None

    def _tone_sample(self, text: str, words: list[str], ascii_only: bool) -> float | None:
        informal = _INFORMAL_WORDS
        count = 0 if informal.isdisjoint(words) else sum(map(informal.__contains__, words))
        if "!!" in text:
            count += text.count("!!")
        if not ascii_only:
            count += len(_EMOJI.findall(text))
        w = self._tone_window
        w.push(len(text), count)
        if w.dropped_chars < self._window or w.count < self._tone_min:
            return None
        base_rate = w.dropped_count / w.dropped_chars
        recent_rate = w.count / w.chars
        if recent_rate > 4.0 * base_rate:
            return min(1.0, 0.5 + w.count / (4.0 * self._tone_min))
        return None

    def _markdown_gap(self, text: str) -> None:
        """Text between two sampled blocks, for the markdown window: whether it has any
        structure is a few ``in`` tests."""
        structure = "\n" in text or "`" in text or "**" in text or "](" in text or "~~~" in text
        self._md_total += len(text)
        self._md_recent.push(len(text), 1 if structure else 0)

    def _markdown_sample(self, text: str) -> float | None:
        n = len(text)
        if self._md_early_chars < self._window:  # the baseline: the exact marker count
            count = sum(map(text.count, _MD_MARKERS))
            self._md_early += count
            self._md_early_chars += n
            if self._md_early_chars >= self._window and self._md_early < self._md_min:
                # the early text was not formatted: a later collapse can never count
                self._markdown = False
                self._sampling = self._repetition or self._entropy or self._tone
                return None
            structure = count > 0 or "\n" in text
        else:  # only whether there is any matters now: every marker has one of these
            structure = (
                "\n" in text or "`" in text or "**" in text or "](" in text or "~~~" in text
            )
        self._md_total += n
        w = self._md_recent
        w.push(n, 1 if structure else 0)  # structure: markers or line breaks
        if (
            self._md_early >= self._md_min
            and w.count == 0
            and w.chars >= w.size
            and self._md_total - w.chars >= self._md_early_chars
        ):
            return 0.7
        return None


Drift = DriftDetector
"""A shorter name: ``from l0_core.guardrails.drift_detector import Drift``."""

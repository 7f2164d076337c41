"""Text similarity for consensus, in time linear in the length of the texts.

``difflib.SequenceMatcher.ratio()`` (what the existing L0 uses) is quadratic in the
worst case and slow on long model outputs (see ``docs/benchmarks.md``: seconds for five
outputs of 10 000 characters). Consensus does not need an alignment, only "do these two
answers say the same thing", so L0 compares **bags of words and of word pairs**:

    similarity(a, b) = (2 · J(words(a), words(b)) + J(pairs(a), pairs(b))) / 3

where ``words`` is the multiset of the lower-cased words of a
text, ``pairs`` the multiset of its neighbouring word pairs, and ``J(A, B) = |A ∩ B| /
|A ∪ B|`` the weighted Jaccard index of two multisets. The words say *what* is said, the
pairs keep some order ("the cat ate the mouse" and "the mouse ate the cat" share every
word, not every pair). 1.0 for the same text, 0.0 for no word in common; one pass over
each text plus one over its distinct features, so linear in the length of the texts.
Each text's bags are built once and reused for every pair (``SimilarityIndex``).

It also tells answers apart better than an alignment does: "The answer is 4" and "The
answer is 5" are 0.93 alike for difflib (one character differs) and 0.57 here; a
reordered paraphrase ("Paris is the capital of France, ..." against "The capital of
France is Paris, ...") is 0.85 here and 0.81 for difflib.

Why not rapidfuzz: its ``Indel`` ratio is a good alignment measure but still O(N·M/64)
and a compiled dependency; bags of words are enough to tell a dissenting answer from a
paraphrase, need nothing but the standard library, and are faster on long texts.
A custom ``similarity=`` function (say ``rapidfuzz.fuzz.ratio``, scaled to 0..1) can be
given to ``l0.consensus``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise

__all__ = ["SimilarityIndex", "bag", "similarity"]

_WORDS = re.compile(r"\w+")


Bags = tuple[Counter[str], Counter[str]]


def bag(text: str) -> Bags:
    """The words of ``text``, lower-cased, and its word pairs (punctuation is left out:
    "Paris" and "Paris." say the same)."""
    words = _WORDS.findall(text.lower())
    return Counter(words), Counter(map(" ".join, pairwise(words)))


def _compare(a: Bags, b: Bags) -> float:
    if not a[1] and not b[1]:  # one word each: the words alone
        return _jaccard(a[0], b[0])
    return (2.0 * _jaccard(a[0], b[0]) + _jaccard(a[1], b[1])) / 3.0


def _jaccard(a: Counter[str], b: Counter[str]) -> float:
    if len(a) > len(b):
        a, b = b, a
    common = 0
    get = b.get
    for key, n in a.items():
        m = get(key)
        if m is not None:
            common += n if n < m else m
    total = a.total() + b.total() - common
    return common / total if total else 1.0


def similarity(a: str, b: str) -> float:
    """How alike two texts are, from 0.0 to 1.0 (see the module documentation)."""
    if a == b:
        return 1.0
    if not a.strip() or not b.strip():
        return 1.0 if a.strip() == b.strip() else 0.0
    return _compare(bag(a), bag(b))


class SimilarityIndex:
    """The pairwise similarity matrix of many texts; each text is read once."""

    def __init__(self, texts: Sequence[str],
                 measure: Callable[[str, str], float] | None = None) -> None:
        self.texts = list(texts)
        n = len(self.texts)
        self.matrix = [[1.0] * n for _ in range(n)]
        bags = None if measure is not None else [bag(t) for t in self.texts]
        for i in range(n):
            for j in range(i + 1, n):
                a, b = self.texts[i], self.texts[j]
                if a == b:
                    value = 1.0
                elif measure is not None:
                    value = float(measure(a, b))
                elif not a.strip() or not b.strip():
                    value = 1.0 if a.strip() == b.strip() else 0.0
                else:
                    assert bags is not None
                    value = _compare(bags[i], bags[j])
                self.matrix[i][j] = self.matrix[j][i] = value

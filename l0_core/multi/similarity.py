"""Text similarity for consensus, in time linear in the length of the texts.

``difflib.SequenceMatcher.ratio()`` (what the existing L0 uses) is quadratic in the
worst case and slow on long model outputs (see ``docs/benchmarks.md``: seconds for five
outputs of 10 000 characters). Consensus does not need an alignment, only "do these two
answers say the same thing", so L0 compares **bags of words and word pairs**:

    similarity(a, b) = |A ∩ B| / |A ∪ B|

where ``A`` and ``B`` are the multisets of the lower-cased words (and punctuation
marks) of each text plus the pairs of neighbouring words (the pairs keep some order:
"the cat ate the mouse" and "the mouse ate the cat" share every word but not every pair).
This is the weighted Jaccard index of the two bags: 1.0 for the same text, 0.0 for no
word in common, and it takes one pass over each text plus one over the distinct
features, so it is linear in the length of the texts. Each text's bag is built once and
reused for every pair (``SimilarityIndex``).

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

_WORDS = re.compile(r"\w+|[^\w\s]")


def bag(text: str) -> Counter[str]:
    """The words (and punctuation marks) of ``text``, lower-cased, plus neighbouring pairs."""
    words = _WORDS.findall(text.lower())
    features = Counter(words)
    features.update(map(" ".join, pairwise(words)))
    return features


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
    return _jaccard(bag(a), bag(b))


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
                    value = _jaccard(bags[i], bags[j])
                self.matrix[i][j] = self.matrix[j][i] = value

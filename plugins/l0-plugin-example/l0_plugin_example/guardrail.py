"""A guardrail rule: words the output must not contain, checked while it streams.

``check_delta`` sees each new piece of text once. A word can be split across
pieces (``"forb"`` + ``"idden"``), so the rule keeps the last few characters
(one less than the longest word) and searches them together with the new
text, only at positions where a match would end inside the new text. The work
per piece is O(len(delta) + longest word) for each word, and nothing is ever
reported twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import get_args

from l0_core import Violation
from l0_core.guardrails.rule import Severity

__all__ = ["BannedWordsRule"]


class BannedWordsRule:
    """Registered as ``example-banned-words``.

    :param words: the words (any substrings) that must not appear; matched
        case-insensitively unless ``case_sensitive``.
    :param severity: ``warning`` (recorded only), ``error`` (the attempt is
        retried) or ``fatal`` (the session stops).
    :param recoverable: for ``error``: retry (true) or stop the session (false).
    """

    name = "example-banned-words"
    streaming = True

    def __init__(
        self,
        words: Iterable[str] = (),
        *,
        severity: Severity = "error",
        recoverable: bool = True,
        case_sensitive: bool = False,
    ) -> None:
        if isinstance(words, str):
            words = [words]
        cleaned = [w for w in words if isinstance(w, str) and w]
        if not cleaned:
            raise ValueError(f"{self.name} needs at least one non-empty word in 'words'")
        if severity not in get_args(Severity):
            raise ValueError(
                f"{self.name}: severity must be one of {', '.join(get_args(Severity))}, "
                f"not {severity!r}"
            )
        self.words = cleaned
        self.severity: Severity = severity
        self.recoverable = recoverable
        flags = 0 if case_sensitive else re.IGNORECASE
        self._patterns = [(w, re.compile(re.escape(w), flags)) for w in cleaned]
        self._keep = max(len(w) for w in cleaned) - 1
        self._tail = ""
        self._reported: set[tuple[int, str]] = set()

    def _find(self, text: str, base: int, new_from: int) -> list[Violation]:
        """Matches in ``text`` (which starts at ``base``) that end after ``new_from``."""
        found: list[Violation] = []
        for word, pattern in self._patterns:
            start = max(0, new_from - len(word) + 1)
            while (m := pattern.search(text, start)) is not None:
                position = base + m.start()
                if (position, word) not in self._reported:
                    self._reported.add((position, word))
                    found.append(
                        Violation(
                            self.name,
                            f"banned word {word!r}",
                            self.severity,
                            self.recoverable,
                            position=position,
                            suggestion="rephrase without the banned word",
                            context={"word": word, "matched": m.group(0)},
                        )
                    )
                start = m.start() + 1
        return found

    def check_delta(self, delta: str, offset: int) -> Sequence[Violation] | None:
        tail = self._tail
        text = tail + delta
        found = self._find(text, offset - len(tail), len(tail))
        self._tail = text[-self._keep :] if self._keep else ""
        return found or None

    def check_complete(self, content: str) -> Sequence[Violation] | None:
        # Everything was normally seen while streaming; this also covers sessions where
        # streaming checks are off, and reports only what was not reported already.
        return self._find(content, 0, 0) or None

"""Continuation from the last good token.

When an attempt fails after delivering text, the next attempt (a retry or a
fallback) can continue instead of starting over. The stream factory receives a
:class:`Resume` telling it what was already said, and can hand that to the
model (for chat models: the checkpoint as a partial assistant message, or
``resume.prompt`` as an extra user message). Models often repeat the last few
words; :class:`OverlapRemover` holds back the first tokens of the new attempt
until it knows how much of them repeats the checkpoint, even when the overlap
spans several tokens, so the consumer sees one seamless text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Continuation", "OverlapRemover", "Resume", "find_overlap"]


class Continuation(BaseModel):
    """How continuation behaves.

    :param enabled: continue from the last good token on retry and fallback.
    :param deduplicate: remove text the model repeats from the checkpoint.
    :param min_overlap: shortest repeat (characters) that is removed.
    :param max_overlap: longest repeat looked for; also the most text held back.
    :param continue_on_length: when the model stops with ``finish_reason ==
        "length"``, make another attempt that continues the text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    deduplicate: bool = True
    min_overlap: int = Field(2, ge=1)
    max_overlap: int = Field(500, ge=1)
    continue_on_length: bool = True


DEFAULT_CONTINUATION_PROMPT = (
    "Your previous answer was cut off. Continue exactly where it stopped, without "
    "repeating anything. It ended with:\n\n{tail}"
)


@dataclass(frozen=True)
class Resume:
    """What a continuation attempt gets: the text already delivered and kept.

    ``checkpoint`` is the last good content; ``prompt`` is a ready instruction
    to continue it (built by ``build_continuation_prompt`` when configured).
    """

    checkpoint: str
    token_count: int
    attempt: int
    fallback_index: int
    prompt: str

    @staticmethod
    def build(
        checkpoint: str,
        token_count: int,
        attempt: int,
        fallback_index: int,
        builder: Callable[[str], str] | None,
    ) -> Resume:
        if builder is not None:
            prompt = builder(checkpoint)
        else:
            prompt = DEFAULT_CONTINUATION_PROMPT.format(tail=checkpoint[-500:])
        return Resume(checkpoint, token_count, attempt, fallback_index, prompt)


def find_overlap(checkpoint: str, text: str, min_overlap: int = 2, max_overlap: int = 500) -> int:
    """Length of the longest suffix of ``checkpoint`` that is a prefix of ``text``."""
    upper = min(len(checkpoint), len(text), max_overlap)
    for k in range(upper, min_overlap - 1, -1):
        if checkpoint.endswith(text[:k]):
            return k
    return 0


class OverlapRemover:
    """Holds back the start of a continuation until its overlap is known."""

    __slots__ = ("_buf", "_cp", "_lo", "done", "max_overlap", "min_overlap", "removed")

    def __init__(self, checkpoint: str, min_overlap: int, max_overlap: int) -> None:
        self._cp = checkpoint
        self._lo = max(0, len(checkpoint) - max_overlap)
        self._buf = ""
        self.min_overlap = min_overlap
        self.max_overlap = max_overlap
        self.done = not checkpoint
        self.removed = ""

    def push(self, text: str) -> str:
        """Feed one token; returns the text that can be delivered now ('' while holding)."""
        if self.done:
            return text
        buf = self._buf + text
        cp = self._cp
        # A longer overlap is still possible while ``buf`` occurs in the checkpoint's tail
        # ending before its last character.
        if len(buf) < self.max_overlap and cp.find(buf, self._lo, len(cp) - 1) != -1:
            self._buf = buf
            return ""
        return self._resolve(buf)

    def flush(self) -> str:
        """The stream ended: deliver whatever is held back."""
        if self.done:
            return ""
        return self._resolve(self._buf)

    def _resolve(self, buf: str) -> str:
        k = find_overlap(self._cp, buf, self.min_overlap, self.max_overlap)
        self.removed = buf[:k]
        self._buf = ""
        self.done = True
        return buf[k:]

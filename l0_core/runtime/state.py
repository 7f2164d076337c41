"""The live state of one session, readable at any time as ``stream.state``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from l0_core.errors import L0Error
    from l0_core.events import ToolCall
    from l0_core.guardrails.rule import Violation

__all__ = ["State"]


class State:
    """What the session has delivered and how it got there.

    ``content`` is exactly the text the session delivered and kept: text of an
    abandoned attempt is never part of it. ``token_count`` counts the text
    pieces (provider chunks) in ``content``.
    """

    __slots__ = (
        "_joined",
        "_joined_n",
        "aborted",
        "attempt",
        "callback_errors",
        "checkpoint_parts",
        "completed",
        "continuation_used",
        "data_outputs",
        "deduplication_applied",
        "drift_detected",
        "drift_types",
        "duration",
        "errors",
        "fallback_index",
        "finish_reason",
        "first_token_at",
        "last_progress",
        "last_token_at",
        "model_retry_count",
        "network_retry_count",
        "overlap_removed",
        "parts",
        "raw_chunks",
        "resumed",
        "started_at",
        "tool_calls",
        "usage",
        "violations",
    )

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._joined = ""
        self._joined_n = 0
        self.checkpoint_parts = 0
        self.attempt = 1
        self.fallback_index = 0
        self.model_retry_count = 0
        self.network_retry_count = 0
        self.completed = False
        self.aborted = False
        self.resumed = False
        self.continuation_used = False
        self.deduplication_applied = False
        self.overlap_removed = ""
        self.drift_detected = False
        self.drift_types: list[str] = []
        self.violations: list[Violation] = []
        self.errors: list[L0Error] = []
        self.tool_calls: list[ToolCall] = []
        self.data_outputs: list[Any] = []
        self.last_progress: Any = None
        self.finish_reason: str | None = None
        self.usage: Mapping[str, Any] | None = None
        self.raw_chunks: list[Any] | None = None
        self.started_at: float | None = None
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.duration: float | None = None
        # failures of observers and callbacks in this session, by name (the first of each
        # is logged with its traceback, the rest only counted here)
        self.callback_errors: dict[str, int] = {}

    @property
    def content(self) -> str:
        """The delivered text (joined on demand; only new pieces are joined)."""
        parts = self.parts
        n = len(parts)
        if n != self._joined_n:
            if n > self._joined_n:
                # With the only reference held locally, CPython grows the string in place,
                # so reading the content as it grows costs O(new text), not O(all text).
                joined, self._joined = self._joined, ""
                joined += "".join(parts[self._joined_n :])
                self._joined = joined
            else:
                self._joined = "".join(parts)
            self._joined_n = n
        return self._joined

    @property
    def token_count(self) -> int:
        return len(self.parts)

    @property
    def checkpoint(self) -> str:
        """The last good content: the text validated at the last checkpoint."""
        return "".join(self.parts[: self.checkpoint_parts])

    @property
    def retry_count(self) -> int:
        return self.model_retry_count + self.network_retry_count

    def _truncate(self, n_parts: int) -> None:
        del self.parts[n_parts:]
        if self._joined_n > n_parts:
            self._joined, self._joined_n = "", 0
        if self.checkpoint_parts > n_parts:
            self.checkpoint_parts = n_parts

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tokenCount": self.token_count,
            "checkpoint": self.checkpoint,
            "attempt": self.attempt,
            "fallbackIndex": self.fallback_index,
            "modelRetryCount": self.model_retry_count,
            "networkRetryCount": self.network_retry_count,
            "completed": self.completed,
            "aborted": self.aborted,
            "resumed": self.resumed,
            "driftDetected": self.drift_detected,
            "violations": [v.to_dict() for v in self.violations],
            "finishReason": self.finish_reason,
            "usage": dict(self.usage) if self.usage else None,
            "duration": self.duration,
        }

    def __repr__(self) -> str:
        return (
            f"State(tokens={self.token_count}, chars={len(self.content)}, "
            f"completed={self.completed}, attempt={self.attempt}, "
            f"fallback_index={self.fallback_index})"
        )

"""Small configuration models shared by the runtime and the config loader."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CheckIntervals", "Timeout"]


class Timeout(BaseModel):
    """Timers, in seconds; ``None`` turns one off.

    :param initial_token: from the start of an attempt (including connecting)
        to its first token.
    :param inter_token: the longest silence between two stream items once text
        flows. A stall is detected within ``inter_token * 1.25``.
    :param total: the whole session, retries and backoff included; when it
        runs out the session ends with ``TOTAL_TIMEOUT``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial_token: float | None = Field(30.0, gt=0)
    inter_token: float | None = Field(30.0, gt=0)
    total: float | None = Field(None, gt=0)


class CheckIntervals(BaseModel):
    """How often (in tokens) streaming checks run.

    :param guardrails: run streaming guardrail checks on the text of every
        ``guardrails`` tokens. ``1`` checks each token before it is delivered;
        the default ``16`` (the existing L0 checks every 15) finds a violation
        at most fifteen tokens late (those are then announced with a
        ``Discard``): a check has a fixed cost of a few microseconds, which
        sixteen tokens share.
    :param drift: run the drift detector every ``drift`` tokens.
    :param checkpoint: save a checkpoint every ``checkpoint`` tokens (of text
        that passed the streaming checks).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    guardrails: int = Field(16, ge=1)
    drift: int = Field(32, ge=1)
    checkpoint: int = Field(16, ge=1)

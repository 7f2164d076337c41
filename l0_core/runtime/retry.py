"""Retry configuration, backoff and presets.

Two budgets: ``attempts`` for model and content failures (zero output,
guardrails, drift, incomplete output, unknown provider errors) and
``network_attempts`` for network and transient ones (connection errors,
timeouts, 429, 5xx); ``max_retries`` caps both together. The ``k``-th retry of
a budget (``k`` from 0) waits ``delay(k)``: the first retry waits the base
delay, not twice it.

With a fallback left, a model that keeps failing is given up after
``fallback_after`` retries (of either budget) rather than after its full budgets,
so that a dead model costs a few requests and seconds, not a minute; the last
model (or the only one) keeps the full budgets.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from l0_core.errors import ErrorCode, L0Error
from l0_core.runtime.options import CheckedModel

__all__ = ["Backoff", "Retry", "RetryContext", "backoff_delay", "instant_backoff_enabled"]

Backoff = Literal["exponential", "linear", "fixed", "full-jitter", "fixed-jitter"]

_RETRIES = "a whole number of retries, 0 or more"
_SECONDS = "a number of seconds, 0 or more"

_instant = False


def instant_backoff_enabled() -> bool:
    return _instant


def _set_instant(value: bool) -> bool:
    global _instant
    old, _instant = _instant, value
    return old


async def sleep(seconds: float) -> None:
    """The sleep every backoff goes through (instant under ``l0_core.testing``)."""
    await asyncio.sleep(0 if _instant else seconds)


@dataclass(frozen=True, slots=True)
class RetryContext:
    """What ``Retry.calculate_delay`` receives."""

    attempt: int  # retries already made in this error's budget (0 for the first retry)
    error: L0Error
    is_network: bool
    model_retry_count: int
    network_retry_count: int
    total_retries: int
    base_delay: float
    max_delay: float
    default_delay: float


def backoff_delay(
    strategy: Backoff, k: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """The delay before retry number ``k`` (0-based) of one budget."""
    if strategy == "fixed":
        return min(base, cap)
    if strategy == "linear":
        return min(base * (k + 1), cap)
    grown = min(base * (2.0**k), cap)
    if strategy == "exponential":
        return grown
    if strategy == "full-jitter":
        return rng() * grown
    return grown / 2.0 + rng() * grown / 2.0  # fixed-jitter


class Retry(CheckedModel):
    """How a session retries. All durations are in seconds.

    :param attempts: retries for model/content failures (alias ``max_attempts``).
    :param network_attempts: retries for network/transient failures.
    :param max_retries: absolute cap on all retries of one stream.
    :param fallback_after: with a fallback left, the retries (of either budget)
        a model gets before the session moves to the next model; the default
        2 makes at most 3 requests per model. The last model keeps the full
        budgets.
    :param base_delay: the first retry's delay. :param max_delay: cap on any delay.
    :param strategy: ``exponential``, ``linear``, ``fixed``, ``full-jitter`` or ``fixed-jitter``.
    :param error_type_delays: base delay per error code (e.g. ``{"RATE_LIMITED": 2.0}``).
    :param retry_on: the only error codes to retry (default: every retryable code).
    :param max_retry_after: a provider's Retry-After above this moves to the next
        fallback at once instead of sleeping.
    :param should_retry: ``(error, state, attempt, category) -> bool`` (or awaitable);
        can only veto a retry L0 would make.
    :param calculate_delay: ``(RetryContext) -> float | None`` (or awaitable);
        ``None`` keeps L0's delay.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, populate_by_name=True
    )

    ACCEPTS: ClassVar[Mapping[str, str]] = {
        "attempts": _RETRIES,
        "network_attempts": _RETRIES,
        "max_retries": _RETRIES,
        "fallback_after": _RETRIES,
        "base_delay": _SECONDS,
        "max_delay": _SECONDS,
        "strategy": "one of 'exponential', 'linear', 'fixed', 'full-jitter', 'fixed-jitter'",
        "error_type_delays": "a mapping of error codes (such as 'RATE_LIMITED') to seconds, "
        "or None",
        "retry_on": "a set of error codes (such as {'RATE_LIMITED'}), or None",
        "max_retry_after": _SECONDS,
        "should_retry": "a function (error, state, attempt, category) -> bool, or None",
        "calculate_delay": "a function (RetryContext) -> seconds or None, or None",
    }

    attempts: int = Field(3, ge=0, alias="max_attempts")
    network_attempts: int = Field(6, ge=0)
    max_retries: int = Field(6, ge=0)
    fallback_after: int = Field(2, ge=0)
    base_delay: float = Field(1.0, ge=0)
    max_delay: float = Field(10.0, ge=0)
    strategy: Backoff = "fixed-jitter"
    error_type_delays: Mapping[ErrorCode, float] | None = None
    retry_on: frozenset[ErrorCode] | None = None
    max_retry_after: float = Field(60.0, ge=0)
    should_retry: Callable[..., bool | Awaitable[bool]] | None = None
    calculate_delay: Callable[[RetryContext], float | Awaitable[float | None] | None] | None = (
        None
    )

    @field_validator("error_type_delays", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {ErrorCode(k): v for k, v in value.items()}
        return value

    # -- presets ---------------------------------------------------------------------------

    # fallback_after: how soon each preset gives a failing model up for the next fallback.

    @classmethod
    def minimal(cls, **overrides: Any) -> Retry:
        """Few retries: one more request per model before a fallback."""
        return cls(**{"attempts": 2, "max_retries": 4, "fallback_after": 1,
                      "strategy": "linear", **overrides})

    @classmethod
    def recommended(cls, **overrides: Any) -> Retry:
        """At most 3 requests per model and about 3 s of backoff before a fallback."""
        return cls(**{"attempts": 3, "max_retries": 6, "fallback_after": 2,
                      "strategy": "fixed-jitter", **overrides})

    @classmethod
    def strict(cls, **overrides: Any) -> Retry:
        return cls(**{"attempts": 3, "max_retries": 6, "fallback_after": 2,
                      "strategy": "full-jitter", **overrides})

    @classmethod
    def exponential(cls, **overrides: Any) -> Retry:
        """Patient: 4 requests per model (1 + 2 + 4 s of backoff) before a fallback."""
        return cls(
            **{"attempts": 4, "network_attempts": 8, "max_retries": 8, "fallback_after": 3,
               "strategy": "exponential", **overrides}
        )

    @classmethod
    def mobile(cls, **overrides: Any) -> Retry:
        """Flaky networks: another model does not fix the connection, so 4 requests first."""
        return cls(
            **{"attempts": 3, "max_retries": 6, "fallback_after": 3, "max_delay": 15.0,
               "strategy": "full-jitter",
               "error_type_delays": {"NETWORK_ERROR": 2.5, "TIMEOUT": 3.0}, **overrides}
        )

    @classmethod
    def edge(cls, **overrides: Any) -> Retry:
        """Short time budgets at the edge: one retry, then the fallback."""
        return cls(
            **{"attempts": 3, "max_retries": 6, "fallback_after": 1, "base_delay": 0.5,
               "max_delay": 5.0, "strategy": "fixed-jitter",
               "error_type_delays": {"INITIAL_TOKEN_TIMEOUT": 1.5, "TIMEOUT": 1.5}, **overrides}
        )

    @classmethod
    def none(cls, **overrides: Any) -> Retry:
        return cls(**{"attempts": 0, "network_attempts": 0, "max_retries": 0,
                      "fallback_after": 0, **overrides})

    def delay_for(self, error: L0Error, k: int) -> float:
        """L0's own delay before retry ``k`` of ``error``'s budget (Retry-After wins)."""
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        base = self.base_delay
        if self.error_type_delays is not None:
            base = self.error_type_delays.get(error.code, base)
        return backoff_delay(self.strategy, k, base, self.max_delay)


PRESETS: Mapping[str, Callable[..., Retry]] = {
    "minimal": Retry.minimal,
    "recommended": Retry.recommended,
    "strict": Retry.strict,
    "exponential": Retry.exponential,
    "mobile": Retry.mobile,
    "edge": Retry.edge,
    "none": Retry.none,
}


class NamedRetryPolicy:
    """A retry preset registered under a name (what ``l0_register_retry_policies`` gets)."""

    def __init__(self, name: str, factory: Callable[..., Retry], description: str = "") -> None:
        self.name = name
        self._factory = factory
        self.description = description

    def __call__(self, **options: Any) -> Retry:
        return self._factory(**options)


async def maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value

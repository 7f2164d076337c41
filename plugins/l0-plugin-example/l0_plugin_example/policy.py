"""A named retry policy: a factory with a ``name`` that returns an :class:`l0_core.Retry`."""

from __future__ import annotations

from typing import Any

from l0_core import Retry

__all__ = ["PatientRetryPolicy"]


class PatientRetryPolicy:
    """Registered as ``example-patient``: more retries and longer, exponential backoff.

    For slow, overloaded backends: five retries for model failures, ten for
    network failures, exponential backoff from 0.5 s up to 30 s. Every
    :class:`~l0_core.Retry` field can be overridden as an option, e.g. in
    ``l0.toml``: ``retry = { policy = "example-patient", max_delay = 60 }``.
    """

    name = "example-patient"
    defaults: dict[str, Any] = {  # noqa: RUF012 - read-only defaults
        "attempts": 5,
        "network_attempts": 10,
        "max_retries": 10,
        "base_delay": 0.5,
        "max_delay": 30.0,
        "strategy": "exponential",
    }

    def __call__(self, **options: Any) -> Retry:
        if "max_attempts" in options:  # the alias of ``attempts``
            options["attempts"] = options.pop("max_attempts")
        return Retry(**{**self.defaults, **options})

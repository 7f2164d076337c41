"""The tracer and the metric instruments, made once per pair of providers.

An observer is created per session (``observers=["otel"]``), so nothing here may be made
per session: getting a tracer and creating instruments costs microseconds and, for the
instruments, takes a lock in the SDK. They are cached per ``(tracer_provider,
meter_provider)`` and shared by every session that uses the same providers. With no
provider given, the API's proxies are cached: they forward to the global providers as soon
as those are set, even when that happens after the first session.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics, trace

__all__ = ["SCOPE", "Telemetry", "telemetry"]

SCOPE = "l0_otel"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

# The GenAI conventions' advisory bucket boundaries (gen-ai-metrics.md).
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                     40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                  16777216, 67108864)
_CHUNK_BUCKETS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Telemetry:
    """The tracer and every instrument the observer records into."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from l0_otel import __version__

        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider,
                                       schema_url=SCHEMA_URL)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider, schema_url=SCHEMA_URL)
        self.duration = _histogram(
            meter, "gen_ai.client.operation.duration", "s",
            "GenAI operation duration (one L0 session, every attempt included)",
            _DURATION_BUCKETS)
        self.token_usage = _histogram(
            meter, "gen_ai.client.token.usage", "{token}",
            "Number of input and output tokens used", _TOKEN_BUCKETS)
        self.first_chunk = _histogram(
            meter, "gen_ai.client.operation.time_to_first_chunk", "s",
            "Time from the request to the first chunk of the response stream", _CHUNK_BUCKETS)
        self.retries = meter.create_counter(
            "l0.retries", unit="{retry}", description="Attempts retried by L0, by reason")
        self.fallbacks = meter.create_counter(
            "l0.fallbacks", unit="{fallback}", description="Moves to a fallback model")
        self.violations = meter.create_counter(
            "l0.guardrail.violations", unit="{violation}",
            description="Guardrail violations, by rule and severity")
        self.timeouts = meter.create_counter(
            "l0.timeouts", unit="{timeout}", description="Stall timeouts, by type")
        self.drifts = meter.create_counter(
            "l0.drift.detections", unit="{detection}", description="Drift detected in output")


def _histogram(meter: Any, name: str, unit: str, description: str,
               buckets: Sequence[float]) -> Any:
    try:
        return meter.create_histogram(name, unit=unit, description=description,
                                      explicit_bucket_boundaries_advisory=buckets)
    except TypeError:  # opentelemetry-api 1.27 has no advisory: the default buckets then
        return meter.create_histogram(name, unit=unit, description=description)


_cache: dict[tuple[int, int], tuple[Any, Any, Telemetry]] = {}
_lock = threading.Lock()
_CACHE_SIZE = 32


def telemetry(tracer_provider: Any = None, meter_provider: Any = None) -> Telemetry:
    """The shared :class:`Telemetry` for these providers (``None``: the global ones)."""
    key = (id(tracer_provider), id(meter_provider))
    hit = _cache.get(key)
    # the providers are kept in the entry, so an id is never reused while it is cached
    if hit is not None and hit[0] is tracer_provider and hit[1] is meter_provider:
        return hit[2]
    with _lock:
        made = Telemetry(tracer_provider, meter_provider)
        if len(_cache) >= _CACHE_SIZE:  # a program making providers over and over (tests):
            _cache.clear()  # forget the old ones rather than keep every provider alive
        _cache[key] = (tracer_provider, meter_provider, made)
        return made

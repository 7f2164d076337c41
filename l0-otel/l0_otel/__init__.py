"""l0-otel: OpenTelemetry traces and metrics for L0 sessions (GenAI semantic conventions).

* :class:`OtelObserver`, registered as the observer ``otel``
  (``l0.run(..., observers=["otel"])`` or ``observers = ["otel"]`` in ``l0.toml``);
* :class:`L0Instrumentor` (``opentelemetry-instrument`` finds it), imported on first use
  because it needs ``opentelemetry-instrumentation``, which the observer does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from l0_otel.observer import CAPTURE_CONTENT_ENV, OtelObserver

if TYPE_CHECKING:
    from l0_otel.instrumentor import L0Instrumentor

__version__ = "0.1.0"

__all__ = ["CAPTURE_CONTENT_ENV", "L0Instrumentor", "OtelObserver", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "L0Instrumentor":
        from l0_otel.instrumentor import L0Instrumentor

        return L0Instrumentor
    raise AttributeError(f"module 'l0_otel' has no attribute {name!r}")

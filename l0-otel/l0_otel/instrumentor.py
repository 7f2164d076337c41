"""``L0Instrumentor``: every L0 session traced, with no change to the application.

``opentelemetry-instrument python app.py`` finds it through the entry point group
``opentelemetry_instrumentor`` (name ``l0``); in code, ``L0Instrumentor().instrument(
tracer_provider=..., meter_provider=...)``. Needs ``opentelemetry-instrumentation``
(``pip install l0-otel[instrument]``), which that command comes from anyway.

How: L0 builds each session's listeners in one function,
``l0_core.runtime.stream._listeners``; the instrumentor wraps it so every session also
gets an ``otel`` observer, unless the session already names one (no double spans), and
``uninstrument()`` puts the original back. L0 has no public "observer for every session"
switch yet; this wrapper is the one place that would use it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from l0_otel.observer import OtelObserver

__all__ = ["L0Instrumentor"]

_INSTRUMENTS = ("l0-core >= 0.1",)


def _names_otel(observers: Iterable[Any] | None) -> bool:
    return any(
        o == "otel" or isinstance(o, OtelObserver) or getattr(o, "name", None) == "otel"
        for o in observers or ()
    )


class L0Instrumentor(BaseInstrumentor):  # type: ignore[misc]
    """The OpenTelemetry instrumentor of L0 sessions.

    ``instrument()`` keywords: ``tracer_provider``, ``meter_provider`` (default: the
    global providers, looked up when each session starts) and ``capture_content``
    (default: ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).
    """

    _original: Callable[..., Any] | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        from l0_core.runtime import stream

        options = {key: kwargs[key] for key in ("tracer_provider", "meter_provider",
                                                "capture_content") if key in kwargs}
        original = stream._listeners
        type(self)._original = original

        def _listeners(on_event: Any, observers: Any, callbacks: Any) -> Any:
            listeners = original(on_event, observers, callbacks)
            if not _names_otel(observers):
                listeners.append(("observer otel (L0Instrumentor)",
                                  OtelObserver(**options).on_event))
            return listeners

        _listeners.__wrapped__ = original  # type: ignore[attr-defined]
        stream._listeners = _listeners

    def _uninstrument(self, **kwargs: Any) -> None:
        from l0_core.runtime import stream

        original = type(self)._original
        if original is not None:
            stream._listeners = original
            type(self)._original = None

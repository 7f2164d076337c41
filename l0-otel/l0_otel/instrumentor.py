"""``L0Instrumentor``: every L0 session traced, with no change to the application.

``opentelemetry-instrument python app.py`` finds it through the entry point group
``opentelemetry_instrumentor`` (name ``l0``); in code, ``L0Instrumentor().instrument(
tracer_provider=..., meter_provider=...)``. Needs ``opentelemetry-instrumentation``
(``pip install l0-otel[instrument]``), which that command comes from anyway.

How: ``l0_core.runtime.stream.observe_every_session`` adds an ``otel`` observer to every
session, unless the session already names one (no double spans); ``uninstrument()``
removes it again.
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

    _remove: Callable[[], None] | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        from l0_core.runtime.stream import observe_every_session

        options = {key: kwargs[key] for key in ("tracer_provider", "meter_provider",
                                                "capture_content") if key in kwargs}
        type(self)._remove = observe_every_session(OtelObserver(**options), unless=_names_otel)

    def _uninstrument(self, **kwargs: Any) -> None:
        remove, type(self)._remove = type(self)._remove, None
        if remove is not None:
            remove()

"""Fixtures for the l0-otel tests: a real SDK with in-memory exporters, per test.

The global providers can be set once per process, so no test sets them: each test gets
its own providers and hands them to the observer (or the instrumentor) explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from l0_core.testing import instant_backoff
from l0_otel import OtelObserver


class OpenSpans(SpanProcessor):
    """Spans started and not ended yet: every test ends with none (spans end on every path)."""

    def __init__(self) -> None:
        self.open: dict[int, str] = {}

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.open[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        assert span.context is not None
        self.open.pop(span.context.span_id, None)


@dataclass
class Otel:
    tracer_provider: TracerProvider
    exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    tracking: OpenSpans

    def observer(self, **options: Any) -> OtelObserver:
        return OtelObserver(tracer_provider=self.tracer_provider,
                            meter_provider=self.meter_provider, **options)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        (found,) = [s for s in self.spans() if s.name == name]
        return found

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, data point)`` of every point of ``metric``."""
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        found.extend((dict(p.attributes or {}), p) for p in m.data.data_points)
        return found

    def value(self, metric: str, **attrs: Any) -> Any:
        """The sum of a counter (or count of a histogram) over points having ``attrs``."""
        total = 0
        for point_attrs, point in self.points(metric):
            if all(point_attrs.get(k.replace("__", ".")) == v for k, v in attrs.items()):
                total += getattr(point, "value", None) or getattr(point, "count", 0)
        return total


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Otel]:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracking = OpenSpans()
    tracer_provider.add_span_processor(tracking)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    with instant_backoff():
        yield Otel(tracer_provider, exporter, meter_provider, reader, tracking)
    assert tracking.open == {}, f"spans never ended: {sorted(tracking.open.values())}"
    tracer_provider.shutdown()
    meter_provider.shutdown()

"""``L0Instrumentor``: in code, and found by ``opentelemetry-instrument`` with no code change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

import l0_core as l0
from l0_core.runtime import stream as stream_module
from l0_core.testing import Script
from l0_otel import L0Instrumentor

from .conftest import Otel
from .support import source


@pytest.fixture
def instrumentor(otel: Otel) -> Iterator[L0Instrumentor]:
    made = L0Instrumentor()
    original = stream_module._listeners
    made.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        yield made
    finally:
        made.uninstrument()
    assert stream_module._listeners is original


def _sessions(otel: Otel) -> list[str]:
    return [str(s.attributes["l0.session.id"]) for s in otel.spans() if s.name == "chat gpt-4o"]


async def test_every_session_is_traced_once_instrumented(
    otel: Otel, instrumentor: L0Instrumentor
) -> None:
    assert isinstance(instrumentor, BaseInstrumentor)
    assert instrumentor.is_instrumented_by_opentelemetry
    stream = l0.run(stream=source(Script(["hi"])))
    assert await stream.read() == "hi"
    assert _sessions(otel) == [stream.id]
    assert otel.value("gen_ai.client.operation.duration") == 1


async def test_a_session_naming_its_own_otel_observer_is_traced_once(
    otel: Otel, instrumentor: L0Instrumentor
) -> None:
    stream = l0.run(stream=source(Script(["hi"])), observers=[otel.observer()])
    assert await stream.read() == "hi"
    assert _sessions(otel) == [stream.id]


async def test_uninstrument_stops_tracing(otel: Otel) -> None:
    made = L0Instrumentor()
    made.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    made.uninstrument()
    assert not made.is_instrumented_by_opentelemetry
    assert await l0.run(stream=source(Script(["hi"]))).read() == "hi"
    assert otel.spans() == []


_APP = textwrap.dedent('''
    """An application that knows nothing about l0-otel."""
    import asyncio
    import json

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import l0_core as l0
    from l0_core.testing import Script, ScriptedSource

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor"):  # no distro configured a provider
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))


    async def main() -> None:
        factory = ScriptedSource([Script(["x"], fail_after=0), Script(["hello"])])
        factory.l0_source = {"provider": "openai", "model": "gpt-4o", "operation": "chat"}
        stream = l0.run(stream=factory, retry=l0.Retry(attempts=2, base_delay=0.001))
        assert await stream.read() == "hello"


    asyncio.run(main())
    print(json.dumps(sorted(s.name for s in exporter.get_finished_spans())))
''')


def _instrumented(tmp_path: Path, **env: str) -> list[str]:
    command = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert command is not None, "opentelemetry-instrument is not installed"
    app = tmp_path / "app.py"
    app.write_text(_APP, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("L0_", "OTEL_"))}
    # offline: no exporter may try the network, whatever distro is installed
    clean.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                 OTEL_LOGS_EXPORTER="none", **env)
    done = subprocess.run([command, sys.executable, str(app)], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    names: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return names


@pytest.mark.slow
def test_opentelemetry_instrument_finds_the_instrumentor(tmp_path: Path) -> None:
    assert _instrumented(tmp_path) == ["chat gpt-4o", "l0.attempt 1", "l0.attempt 2"]


@pytest.mark.slow
def test_opentelemetry_instrument_can_disable_it_by_name(tmp_path: Path) -> None:
    assert _instrumented(tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="l0") == []

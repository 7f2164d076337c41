"""The oldest supported OpenTelemetry passes the same l0-otel suite as the newest.

The main test environment has the newest opentelemetry-api and SDK. This test builds a
fresh virtualenv with the oldest versions l0-otel supports (API and SDK 1.27,
opentelemetry-instrumentation 0.48b0) and runs tests/otel in it, so both ends of
``opentelemetry-api>=1.27,<2`` are tested. (The OpenAI test is left out there: it needs the
OpenAI SDK, whose range l0-openai tests.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oldest_versions import passes_on_oldest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_opentelemetry_passes_the_otel_suite(tmp_path: Path) -> None:
    passes_on_oldest(tmp_path, distribution="l0-otel",
                     pins=["opentelemetry-api==1.27.0", "opentelemetry-sdk==1.27.0",
                           "opentelemetry-instrumentation==0.48b0"],
                     expect=("opentelemetry-api", "1.27.0"), suite="tests/otel",
                     leave_out=["tests/otel/test_otel_openai.py"],
                     clear_env=("L0_", "PYTEST_", "OTEL_"))

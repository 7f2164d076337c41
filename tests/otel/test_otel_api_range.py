"""The oldest supported OpenTelemetry passes the same l0-otel suite as the newest.

The main test environment has the newest opentelemetry-api and SDK. This test builds a
fresh virtualenv with the oldest versions l0-otel supports (API and SDK 1.27,
opentelemetry-instrumentation 0.48b0) and runs tests/otel in it, so both ends of
``opentelemetry-api>=1.27,<2`` are tested. (The OpenAI test is left out there: it needs the
OpenAI SDK, whose range l0-openai tests.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OLDEST = ["opentelemetry-api==1.27.0", "opentelemetry-sdk==1.27.0",
          "opentelemetry-instrumentation==0.48b0"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_opentelemetry_passes_the_otel_suite(tmp_path: Path) -> None:
    env_dir = tmp_path / "oldest"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-e", str(ROOT), "-e", str(ROOT / "l0-otel"), *OLDEST,
               "pytest>=8.3", "pytest-asyncio>=0.24", "pytest-timeout>=2.3"]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = subprocess.run(
        [str(python), "-c", "import opentelemetry.version as v; print(v.__version__)"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert version == "1.27.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("L0_", "PYTEST_", "OTEL_"))}
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/otel",
         "--ignore", "tests/otel/test_otel_openai.py",
         "--deselect", "tests/otel/test_otel_api_range.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
    assert sys.executable != str(python)

"""The oldest supported sentry-sdk passes the same l0-sentry suite as the newest.

The main test environment has the newest sentry-sdk. This test builds a fresh virtualenv
with the oldest version l0-sentry supports (2.20) and runs tests/sentry in it, so both ends
of ``sentry-sdk>=2.20,<3`` are tested. (The OpenAI test is left out there: it needs the
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
OLDEST = ["sentry-sdk==2.20.0"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_sentry_sdk_passes_the_sentry_suite(tmp_path: Path) -> None:
    env_dir = tmp_path / "oldest"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-e", str(ROOT), "-e", str(ROOT / "l0-sentry"), *OLDEST,
               "pytest>=8.3", "pytest-asyncio>=0.24", "pytest-timeout>=2.3"]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = subprocess.run(
        [str(python), "-c", "import sentry_sdk; print(sentry_sdk.VERSION)"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert version == "2.20.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("L0_", "PYTEST_"))}
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/sentry",
         "--ignore", "tests/sentry/test_sentry_openai.py",
         "--deselect", "tests/sentry/test_sentry_sdk_range.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
    assert sys.executable != str(python)

"""The oldest supported litellm passes the same LiteLLM suite as the newest.

The main test environment has the newest litellm. This test builds a fresh virtualenv
with the oldest version l0-litellm supports (1.109, the first that reports an
OpenAI-compatible stream that ends without a finish reason instead of completing it with
``stop``) and runs tests/litellm in it, so both ends of ``litellm>=1.109,<2`` are tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OLDEST = ["litellm==1.109.0"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_litellm_passes_the_litellm_suite(tmp_path: Path) -> None:
    env_dir = tmp_path / "oldest"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-e", str(ROOT), "-e", str(ROOT / "l0-litellm"), *OLDEST,
               "pytest>=8.3", "pytest-asyncio>=0.24", "pytest-timeout>=2.3", "hypothesis"]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('litellm'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert version == "1.109.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("L0_", "PYTEST_"))}
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
         "tests/litellm"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
    assert sys.executable != str(python)

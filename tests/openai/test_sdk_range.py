"""The oldest supported openai SDK passes the same OpenAI suite as the newest.

The main test environment has the newest openai (3.x, on httpx2). This test builds a
fresh virtualenv with the oldest version l0-openai supports (1.40, on httpx) and runs
tests/openai in it, so both ends of ``openai>=1.40,<4`` are tested in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OLDEST = ["openai==1.40.0", "httpx<0.28"]  # openai < 1.55.3 needs the httpx of its time


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_oldest_supported_openai_passes_the_openai_suite(tmp_path: Path) -> None:
    env_dir = tmp_path / "oldest"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-e", str(ROOT), "-e", str(ROOT / "l0-openai"), *OLDEST,
               "pytest>=8.3", "pytest-asyncio>=0.24", "pytest-timeout>=2.3", "hypothesis"]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = subprocess.run([str(python), "-c", "import openai; print(openai.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "1.40.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("L0_", "PYTEST_"))}
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
         "tests/openai"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
    assert sys.executable != str(python)

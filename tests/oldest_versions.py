"""Run one distribution's test suite in a fresh virtualenv with the oldest versions of the
SDK it supports, so both ends of its version range are tested (each ``test_*_range.py``
calls :func:`passes_on_oldest`)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = ["pytest>=8.3", "pytest-asyncio>=0.24", "pytest-timeout>=2.3", "hypothesis"]


def passes_on_oldest(
    tmp_path: Path,
    *,
    distribution: str,
    pins: Sequence[str],
    expect: tuple[str, str],
    suite: str,
    leave_out: Sequence[str] = (),
    clear_env: tuple[str, ...] = ("L0_", "PYTEST_"),
) -> None:
    """Install ``distribution`` (a folder of this repository) with ``pins``, check that
    ``expect`` = (package, version) is what got installed, and run ``suite`` (its slow
    tests and the files in ``leave_out`` excepted) with that interpreter."""
    env_dir = tmp_path / "oldest"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
               "-e", str(ROOT), "-e", str(ROOT / distribution), *pins, *TEST_TOOLS]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    package, version = expect
    installed = subprocess.run(
        [str(python), "-c", f"from importlib.metadata import version; print(version({package!r}))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert installed == version
    env = {k: v for k, v in os.environ.items() if not k.startswith(clear_env)}
    ignored = [arg for path in leave_out for arg in ("--ignore", path)]
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", suite,
         *ignored],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
    assert sys.executable != str(python)

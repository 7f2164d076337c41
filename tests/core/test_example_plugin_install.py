"""End to end: the example plugin installed with real pip into a fresh virtualenv is found
through its entry point, its names work from config, and uninstalling it removes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plugins" / "l0-plugin-example"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json
    import l0_core as l0
    from l0_core.plugins.config import defaults_for_run

    async def tokens():
        for piece in ["this is for", "bidden ", "text"]:
            yield piece

    async def main():
        stream = l0.run(stream=tokens)        # nothing but the stream: the rest is config
        text = await stream.read()
        print(json.dumps({
            "text": text,
            "violations": [[v.rule, v.severity, v.position] for v in stream.state.violations],
            "retry_attempts": defaults_for_run().retry.attempts,
        }))

    asyncio.run(main())
    """
)


def _env() -> dict[str, str]:
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("L0_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(args: list[str | Path], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=540, check=False)
    if check:
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _plugins(l0: Path, cwd: Path) -> dict[str, dict[str, object]]:
    listed = json.loads(_run([l0, "plugins", "--json"], cwd).stdout)
    return {p["name"]: p for p in listed}


def test_example_plugin_installs_works_from_config_and_uninstalls(tmp_path: Path) -> None:
    version = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["version"]
    venv = tmp_path / "venv"
    work = tmp_path / "work"
    work.mkdir()
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python, l0 = bindir / "python", bindir / "l0"
    _run([python, "-m", "pip", "install", "--quiet", ROOT, EXAMPLE], tmp_path)

    # found through its entry point, with its version and every name it registers
    listed = _plugins(l0, work)
    example = listed.get("example")
    assert example is not None, listed
    assert example["distribution"] == "l0-plugin-example"
    assert example["version"] == version
    assert example["status"] == "loaded"
    assert example["reason"] is None
    assert example["registered"] == {
        "adapters": ["example-dict"],
        "guardrails": ["example-banned-words"],
        "retry_policies": ["example-patient"],
        "observers": ["example-counter"],
    }

    # its names are usable from configuration alone
    (work / "l0.toml").write_text(
        'guardrails = [{ name = "example-banned-words", words = ["forbidden"], '
        'severity = "warning" }]\n'
        'retry = "example-patient"\n'
        'observers = ["example-counter"]\n'
    )
    (work / "check.py").write_text(SCRIPT)
    result = json.loads(_run([python, "check.py"], work).stdout)
    assert result == {
        "text": "this is forbidden text",
        "violations": [["example-banned-words", "warning", 8]],
        "retry_attempts": 5,
    }
    shown = json.loads(_run([l0, "config", "--json"], work).stdout)
    assert shown["guardrails"]["source"] == str(work / "l0.toml")

    # uninstalled: gone from the listing, and config naming it is now a clear error
    _run([python, "-m", "pip", "uninstall", "--quiet", "-y", "l0-plugin-example"], tmp_path)
    assert "example" not in _plugins(l0, work)
    failed = _run([l0, "config"], work, check=False)
    assert failed.returncode == 2
    assert failed.stderr.startswith("l0: configuration error: ")
    assert "unknown" in failed.stderr
    assert "'example-patient'" in failed.stderr or "'example-banned-words'" in failed.stderr

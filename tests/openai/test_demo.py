"""``l0 demo`` (the README's first command) with l0-openai's scenarios: every scenario
recovers and says how, one runs alone by name, and the core finds them only through the
plugin's ``l0_register_demo_scenarios`` hook."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from l0_core import demo
from l0_core.demo import Result, Scenario, Screen
from l0_openai.demo import openai_scenarios


def _run(scenarios: list[Scenario]) -> tuple[list[Result], str]:
    out = io.StringIO()
    screen = Screen(out, width=100, colour=False)

    async def go() -> list[Result]:
        return [await demo.run_scenario(scenario, screen) for scenario in scenarios]

    return asyncio.run(go()), out.getvalue()


def _pick(*names: str) -> list[Scenario]:
    chosen = [scenario for scenario in openai_scenarios() if scenario.name in names]
    assert [scenario.name for scenario in chosen] == list(names)
    return chosen


def test_scenario_names_are_unique_and_kebab_case() -> None:
    names = [scenario.name for scenario in openai_scenarios()]
    assert len(set(names)) == len(names) == 14
    assert all(demo.SCENARIO_NAME.match(name) for name in names)
    assert "cut-midstream" in names


def test_the_guardrail_and_drift_scenarios_recover_over_real_http() -> None:
    results, text = _run(_pick("refusal", "broken-json", "looping"))
    assert [(r.scenario, r.ok, r.requests, r.recovery) for r in results] == [
        ("refusal", True, 2, "retry"),
        ("broken-json", True, 2, "retry"),
        ("looping", True, 2, "retry"),
    ]
    assert "GUARDRAIL_VIOLATION: guardrail pattern: refusal" in text
    assert "GUARDRAIL_VIOLATION: guardrail json: unexpected '}'" in text
    assert "DRIFT_DETECTED: drift detected: repetition" in text
    assert text.count("discard") == 3  # each abandoned attempt is announced


def test_one_scenario_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert demo.main(["cut-midstream"], out=out, width=60) == 0
    # the SDK's own words for a cut connection vary with its version: the rest is exact
    shown = re.sub(r"(  ✗ NETWORK_ERROR: ).*?( → retrying\n)", r"\1...\2", out.getvalue(),
                   flags=re.DOTALL)
    shown = re.sub(r"retry 1 in \d+\.\d\ds", "retry 1 in Ts", shown)
    assert shown == (
        "L0 demo: the real openai SDK, wrapped by l0.wrap, against a\n"
        "local OpenAI-compatible server that injects faults.\n"
        "\n"
        "▶ connection cut  (socket closed after 5 tokens)\n"
        "    Streams fail in many ways\n"
        "  ✗ NETWORK_ERROR: ... → retrying\n"
        "  ↺ discard 25 chars of attempt 1\n"
        "  ↻ retry 1 in Ts\n"
        "    Streams fail in many ways; L0 keeps the text whole.\n"
        "  ✓ recovered  final text: 'Streams fail in many ways; L0\n"
        "    keeps the text whole.'\n"
    )
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_every_demo_scenario_recovers() -> None:
    out = io.StringIO()
    assert demo.main([], out=out) == 0, out.getvalue()
    every = len(demo.find_scenarios().scenarios)  # l0-openai's and other plugins'
    assert every >= len(openai_scenarios())
    assert f"\n{every} passed, 0 failed\n" in out.getvalue()


# -- found through the entry point, never imported by the core --------------------------------

PROBE = """
import json, sys
from l0_core import cli
from l0_core.plugins.host import get_host
status = cli.main(sys.argv[1:])
records = [r.to_dict() for r in get_host().records if r.distribution == "l0-openai"]
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "l0_openai")
print(json.dumps({"status": status, "records": records, "modules": loaded}))
"""


def _probe(tmp_path: Path, *argv: str, **env: str) -> tuple[dict[str, object], str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("L0_", "PYTEST_"))}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          env={**clean, **env}, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    *shown, report = done.stdout.splitlines()
    return json.loads(report), "\n".join(shown) + done.stderr


def test_the_demo_finds_l0_openai_through_its_entry_point(tmp_path: Path) -> None:
    report, shown = _probe(tmp_path, "demo", "--help")
    assert report["status"] == 0
    assert re.search(r"scenarios \(from l0-openai(, [a-z0-9-]+)*\):", shown)
    assert "  cut-midstream  " in shown
    (record,) = report["records"]  # type: ignore[misc]
    assert record["status"] == "loaded"
    assert "l0_register_demo_scenarios" in record["hooks"]
    assert {"l0_openai.plugin", "l0_openai.demo"} <= set(report["modules"])  # type: ignore[arg-type]


def test_with_l0_openai_blocked_the_core_imports_none_of_it(tmp_path: Path) -> None:
    report, shown = _probe(tmp_path, "demo", L0_DISABLE_PLUGINS="l0-openai,l0-litellm")
    assert report["status"] == 1
    assert report["modules"] == []
    assert "pip install l0-openai" in shown

"""``l0 demo`` (the README's first command): every scenario recovers, and says how."""

from __future__ import annotations

import asyncio
import io

import pytest

from l0_core import demo
from l0_core.demo import Out, Scenario, scripted_scenarios
from l0_openai.demo import openai_scenarios


def _run(scenarios: list[Scenario]) -> tuple[list[dict[str, object]], str]:
    out = io.StringIO()

    async def go() -> list[dict[str, object]]:
        return [await demo._run_one(sc, Out(out)) for sc in scenarios]

    return asyncio.run(go()), out.getvalue()


def _pick(scenarios: list[Scenario], *titles: str) -> list[Scenario]:
    chosen = [sc for sc in scenarios if sc.title in titles]
    assert [sc.title for sc in chosen] == list(titles)
    return chosen


def test_the_guardrail_and_drift_scenarios_recover_over_real_http() -> None:
    rows, text = _run(_pick(openai_scenarios(), "refusal", "broken JSON", "looping"))
    assert [(r["scenario"], r["ok"], r["requests"], r["recovery"]) for r in rows] == [
        ("refusal", True, 2, "retry"),
        ("broken JSON", True, 2, "retry"),
        ("looping", True, 2, "retry"),
    ]
    assert "GUARDRAIL_VIOLATION: guardrail pattern: refusal" in text
    assert "GUARDRAIL_VIOLATION: guardrail json: unexpected '}'" in text
    assert "DRIFT_DETECTED: drift detected: repetition" in text
    assert text.count("discard") == 3  # each abandoned attempt is announced


@pytest.mark.slow
def test_every_demo_scenario_recovers() -> None:
    out = io.StringIO()
    assert demo.show([], out) == 0, out.getvalue()
    assert f"{len(openai_scenarios())} passed, 0 failed" in out.getvalue()


def test_the_scripted_demo_without_l0_openai_recovers() -> None:
    rows, _ = _run(scripted_scenarios())
    assert all(r["ok"] for r in rows), rows

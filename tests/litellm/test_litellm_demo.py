"""The LiteLLM demo scenarios recover over real HTTP (played directly: they are not
registered with ``l0 demo`` yet)."""

from __future__ import annotations

import io

from l0_core import demo
from l0_core.demo import Result, Screen
from l0_litellm.demo import litellm_scenarios


async def test_the_litellm_scenarios_recover() -> None:
    out = io.StringIO()
    screen = Screen(out, width=100, colour=False)
    scenarios = litellm_scenarios()
    assert all(demo.SCENARIO_NAME.match(s.name) for s in scenarios)
    results: list[Result] = [await demo.run_scenario(s, screen) for s in scenarios]
    assert [(r.scenario, r.ok, r.requests, r.recovery) for r in results] == [
        ("litellm-cut-midstream", True, 2, "retry"),
        ("litellm-model-down", True, 3, "retry → fallback"),
    ]
    text = out.getvalue()
    assert "NETWORK_ERROR" in text
    assert "SERVICE_UNAVAILABLE" not in text
    assert "Any provider, one set of guarantees." in text

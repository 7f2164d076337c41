"""l0.Cooldowns: a model failing repeatedly is skipped by every worker for a while."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import l0_core as l0
from l0_core.record import open_store
from l0_core.record.store import close_stores
from l0_core.testing import Script, ScriptedSource


def _events(into: list[Any]) -> Any:
    def on_event(event: l0.ObservabilityEvent) -> None:
        if event.type.value.startswith("MODEL_") or event.type.value in (
                "SESSION_START", "FALLBACK_START"):
            into.append((event.type.value, {k: v for k, v in event.meta.items()
                                            if k in ("model", "index", "failures")}))

    return on_event


@pytest.fixture(params=["memory", "redis"])
async def cool_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "memory":
        yield f"memory://cool-{id(request)}"
    else:
        yield request.getfixturevalue("redis_server") + f"?prefix=c{id(request)}"
    await close_stores()


async def test_a_failing_model_is_skipped_by_every_worker_until_its_cooldown_ends(
        cool_url: str, request: pytest.FixtureRequest, instant: None) -> None:
    url = cool_url
    shared = not url.startswith("memory")
    workers = [l0.Cooldowns(open_store(f"{url}&worker={n}") if shared else url,
                            failures=2, window=30, cooldown=0.6) for n in "ab"]
    down = ScriptedSource([Script(["x"], fail_after=0)])
    backup = ScriptedSource([Script(["from ", "backup"], delay=0.05)])
    seen: list[Any] = []
    first = await workers[0].run({"primary": down, "backup": backup},
                                 retry=l0.Retry(max_retries=1), on_event=_events(seen))
    assert await first.read() == "from backup"
    assert down.calls == 2  # two failures: the second starts the cooldown
    assert ("MODEL_COOLDOWN", {"model": "primary", "failures": 2}) in seen
    assert "primary" in await workers[1].cooling(["primary", "backup"])

    seen.clear()
    second = await workers[1].run({"primary": down, "backup": backup},
                                  on_event=_events(seen))  # another worker
    assert await second.read() == "from backup"
    assert down.calls == 2  # never tried
    assert seen[:2] == [("SESSION_START", {}), ("MODEL_SKIPPED", {"model": "primary",
                                                                   "index": 0})]
    assert "FALLBACK_START" not in [kind for kind, _ in seen]  # straight to the next model

    # recorded too, after the header, and replayed
    log = open_store(f"memory://cool-log-{id(request)}")
    recorded = await workers[1].run({"primary": down, "backup": backup}, record=log)
    assert await recorded.read() == "from backup"
    await recorded.recording.wait()
    kinds = [r.type for r in await log.read(recorded.id)]
    assert kinds[:2] == ["session", "SESSION_START"] and kinds.count("MODEL_SKIPPED") == 1
    assert await l0.replay(recorded.id, store=log).read() == "from backup"

    await asyncio.sleep(0.7)
    assert await workers[1].cooling(["primary"]) == {}
    third = await workers[1].run({"primary": ScriptedSource([Script(["back"])]),
                                  "backup": backup})
    assert await third.read() == "back"


async def test_every_model_cooling_tries_them_all_and_bad_options_are_clear(instant: None
                                                                          ) -> None:
    cooldowns = l0.Cooldowns("memory://all-cool", cooldown=5)
    for model in ("m1", "m2"):
        for _ in range(3):
            await cooldowns.failed(model)
    assert set(await cooldowns.cooling(["m1", "m2"])) == {"m1", "m2"}
    stream = await cooldowns.run([("m1", ScriptedSource([Script(["ok"])])),
                                  ("m2", ScriptedSource([Script(["no"])]))])
    assert await stream.read() == "ok"
    for bad in ({"failures": 0}, {"window": -1}, {"cooldown": "long"}):
        with pytest.raises(l0.ConfigError):
            l0.Cooldowns("memory://x", **bad)
    with pytest.raises(l0.ConfigError, match="at least one"):
        await cooldowns.run({})
    with pytest.raises(l0.ConfigError, match="not as stream="):
        await cooldowns.run({"m": ScriptedSource([])}, stream=ScriptedSource([]))


async def test_the_configured_observers_still_observe_a_cooldowns_session(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from l0_core.plugins import config as l0_config

    seen: list[str] = []

    class Counter:
        name = "scale-test-counter"

        def on_event(self, event: l0.ObservabilityEvent) -> None:
            seen.append(event.type.value)

    class Plugin:
        @l0.hookimpl
        def l0_register_observers(self, register: Any) -> None:
            register(Counter)

    l0.register_plugin(Plugin())
    monkeypatch.setenv("L0_OBSERVERS", "scale-test-counter")
    l0_config.set_config(None)
    cooldowns = l0.Cooldowns("memory://observed")
    stream = await cooldowns.run({"m": ScriptedSource([Script(["hi"])])})
    assert await stream.read() == "hi"
    assert seen[0] == "SESSION_START" and seen[-1] == "SESSION_END"

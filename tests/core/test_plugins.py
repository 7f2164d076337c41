"""The plugin host: discovery through entry points, failure isolation, switches, registries,
and the boundary hooks (``l0_classify_error``, ``l0_wrap_client``)."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import l0_core as l0
from l0_core.plugins import config as l0_config
from l0_core.plugins import host as plugins
from l0_core.plugins.host import PluginHost, PluginRecord
from l0_core.testing import Script, ScriptedSource, instant_backoff
from tests.core import fake_plugins as fp

EVERY_TOKEN = l0.CheckIntervals(guardrails=1)  # check each token before delivery


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    # tests/conftest.py clears L0_* variables; also keep config files out of reach
    monkeypatch.chdir(tmp_path)
    plugins.reset_host()
    l0_config.set_config(None)
    yield
    plugins.reset_host()
    l0_config.set_config(None)


def make_host(*entry_points: Any, **kwargs: Any) -> PluginHost:
    return PluginHost(entry_points=lambda: list(entry_points), **kwargs)


def record(host: PluginHost, name: str) -> PluginRecord:
    (found,) = [r for r in host.records if r.name == name]
    return found


# -- discovery and failure isolation ------------------------------------------------------------


def test_entry_point_plugin_is_loaded_and_its_names_registered() -> None:
    host = make_host(fp.dist_entry_point("good", "good", "l0-good", "2.3"))
    host.build_all()
    rec = record(host, "good")
    assert (rec.status, rec.distribution, rec.version, rec.reason) == (
        "loaded", "l0-good", "2.3", None)
    assert rec.hooks == ["l0_register_guardrails", "l0_register_observers",
                         "l0_register_retry_policies"]
    assert rec.registered == {"guardrails": ["good-rule"], "retry_policies": ["good-policy"],
                              "observers": ["good-observer"]}
    assert host.registry("guardrails").owner("good-rule") is rec
    assert host.registry("retry_policies").get("good-policy")().attempts == 9


def test_builtins_register_first_through_the_same_hooks() -> None:
    host = make_host()
    first = host.records[0]
    assert (first.name, first.status, first.distribution) == ("builtins", "builtin", "l0-core")
    host.build_all()
    assert "custom_pattern" in first.registered["guardrails"]
    assert "recommended" in first.registered["retry_policies"]
    assert first.registered["adapters"] == ["text", "events"]


def test_plugin_whose_import_raises_is_recorded_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = importlib.metadata.EntryPoint("broken", "tests.core.broken_plugin_module", "l0")
    with caplog.at_level(logging.WARNING, logger="l0"):
        host = make_host(broken, fp.entry_point("good", "good"))
    rec = record(host, "broken")
    assert rec.status == "failed"
    assert rec.reason is not None
    assert "import failed: ImportError" in rec.reason
    assert "needs a library that is not installed" in rec.reason
    assert "broken" in caplog.text
    # the core and the other plugin go on
    assert record(host, "good").status == "loaded"
    assert "good-rule" in host.registry("guardrails")


def test_missing_module_is_recorded_not_fatal() -> None:
    host = make_host(importlib.metadata.EntryPoint("ghost", "no_such_module_l0_test", "l0"))
    rec = record(host, "ghost")
    assert rec.status == "failed"
    assert rec.reason is not None
    assert "ModuleNotFoundError" in rec.reason


def test_misspelt_hook_name_rejects_the_plugin_naming_the_hook() -> None:
    host = make_host(fp.entry_point("misspelt", "misspelt"))
    rec = record(host, "misspelt")
    assert rec.status == "failed"
    assert rec.reason is not None
    assert "l0_register_guardrail" in rec.reason
    assert "do not exist" in rec.reason
    assert "l0_register_guardrails" in rec.reason  # the known hooks are listed
    host.build_all()
    # nothing of a rejected plugin is used, not even its valid hooks
    assert "misspelt-rule" not in host.registry("guardrails")
    assert "never-observer" not in host.registry("observers")


def test_hookimpl_with_arguments_the_hook_lacks_is_rejected() -> None:
    class ExtraArgument:
        @l0.hookimpl
        def l0_register_guardrails(self, register: Any, extra: Any) -> None:
            register(fp.rule_class("extra-rule"))

    host = make_host()
    rec = host.register(ExtraArgument(), name="extra")
    assert rec.status == "failed"
    assert rec.reason is not None
    assert "invalid plugin: PluginValidationError" in rec.reason
    assert "extra" in rec.reason
    assert "extra-rule" not in host.registry("guardrails")


def test_registration_hook_that_raises_is_recorded() -> None:
    host = make_host(fp.entry_point("raising", "raising"), fp.entry_point("good", "good"))
    registry = host.registry("guardrails")  # builds the registry; must not raise
    rec = record(host, "raising")
    assert rec.reason is not None
    assert "l0_register_guardrails raised RuntimeError: registration exploded" in rec.reason
    assert "good-rule" in registry  # other plugins are unaffected


def test_invalid_registered_name_is_recorded() -> None:
    host = make_host(fp.entry_point("bad-name", "bad_name"))
    host.registry("guardrails")
    rec = record(host, "bad-name")
    assert rec.reason is not None
    assert "without a valid 'name'" in rec.reason
    assert "has space" in rec.reason


def test_duplicate_names_name_both_distributions() -> None:
    host = make_host(
        fp.dist_entry_point("good", "good", "l0-good"),
        fp.dist_entry_point("dup", "duplicate", "l0-duplicate"),
    )
    registry = host.registry("guardrails")
    assert "good-rule" not in registry
    assert "good-rule" not in registry.names()
    with pytest.raises(l0.ConfigError) as info:
        registry.get("good-rule")
    assert "l0-good" in info.value.message
    assert "l0-duplicate" in info.value.message
    assert info.value.code is l0.ErrorCode.UNKNOWN_PLUGIN
    assert "only-in-duplicate" in registry  # the plugin's other names still work


def test_duplicate_name_named_in_config_is_a_config_error(tmp_path: Any) -> None:
    plugins.reset_host(make_host(
        fp.dist_entry_point("good", "good", "l0-good"),
        fp.dist_entry_point("dup", "duplicate", "l0-duplicate"),
    ))
    (tmp_path / "l0.toml").write_text('guardrails = ["good-rule"]\n')
    with pytest.raises(l0.ConfigError, match=r"l0-good and l0-duplicate"):
        l0_config.load(environ={})


def test_a_plugin_cannot_replace_a_builtin() -> None:
    class Shadow:
        @l0.hookimpl
        def l0_register_guardrails(self, register: Any) -> None:
            register(fp.rule_class("custom_pattern"))

    host = make_host()
    host.register(Shadow(), name="shadow")
    with pytest.raises(l0.ConfigError, match=r"l0-core and shadow"):
        host.registry("guardrails").get("custom_pattern")


def test_same_entry_point_seen_twice_is_loaded_once() -> None:
    ep = fp.entry_point("good", "good")
    host = make_host(ep, ep)
    assert [r.name for r in host.records] == ["builtins", "good"]
    assert "good-rule" in host.registry("guardrails")


# -- switches ---------------------------------------------------------------------------------


def _eps() -> list[Any]:
    return [
        fp.dist_entry_point("good", "good", "l0-good"),
        fp.dist_entry_point("raising", "raising", "l0-raising"),
    ]


def test_allow_list_by_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("L0_PLUGINS", "good")
    host = make_host(*_eps())
    assert record(host, "good").status == "loaded"
    rec = record(host, "raising")
    assert (rec.status, rec.reason) == ("blocked", "not listed in L0_PLUGINS")
    assert "before-the-crash" not in host.registry("guardrails")


def test_allow_list_by_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("L0_PLUGINS", " l0-raising , ")
    host = make_host(*_eps())
    assert record(host, "good").status == "blocked"
    assert record(host, "raising").status == "loaded"


def test_block_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("L0_DISABLE_PLUGINS", "l0-good,raising")
    host = make_host(*_eps())
    for name in ("good", "raising"):
        rec = record(host, name)
        assert (rec.status, rec.reason) == ("blocked", "blocked by L0_DISABLE_PLUGINS")
    builtins = host.records[0]  # only the built-in rules are left
    assert host.registry("guardrails").names() == builtins.registered["guardrails"]


def test_block_list_wins_over_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("L0_PLUGINS", "good")
    monkeypatch.setenv("L0_DISABLE_PLUGINS", "good")
    assert record(make_host(*_eps()), "good").status == "blocked"


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_no_autoload_loads_no_entry_points(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("L0_DISABLE_PLUGIN_AUTOLOAD", value)
    calls: list[int] = []

    def entry_points() -> list[Any]:
        calls.append(1)
        return _eps()

    host = PluginHost(entry_points=entry_points)
    assert calls == []
    assert [r.name for r in host.records] == ["builtins"]
    # plugins registered in code still work
    host.register(fp.GoodPlugin(), name="in-code")
    assert "good-rule" in host.registry("guardrails")
    assert record(host, "in-code").status == "code"


def test_switches_as_constructor_arguments() -> None:
    assert [r.name for r in make_host(*_eps(), autoload=False).records] == ["builtins"]
    host = make_host(*_eps(), allow=["good"], block=[])
    assert record(host, "raising").status == "blocked"
    host = make_host(*_eps(), block=["l0-good"])
    assert record(host, "good").status == "blocked"


def test_real_entry_point_group_is_scanned_by_default() -> None:
    host = PluginHost()  # importlib.metadata entry_points(group="l0")
    installed = {ep.name for ep in importlib.metadata.entry_points(group="l0")}
    assert {r.name for r in host.records if r.status != "builtin"} == installed


# -- the process-wide host ----------------------------------------------------------------------


def test_get_host_is_shared_and_reset_host_replaces_it() -> None:
    mine = make_host(fp.entry_point("good", "good"))
    plugins.reset_host(mine)
    assert plugins.get_host() is mine is plugins.get_host()
    plugins.reset_host()
    assert plugins.get_host() is not mine


def test_register_plugin_adds_to_the_process_host() -> None:
    plugins.reset_host(make_host())
    rec = l0.register_plugin(fp.GoodPlugin(), name="mine")
    assert rec.status == "code"
    assert rec.label == "mine"
    assert "good-observer" in plugins.get_host().registry("observers")


def test_registering_after_a_registry_was_built_rebuilds_it() -> None:
    host = make_host()
    assert "good-rule" not in host.registry("guardrails")
    host.register(fp.GoodPlugin(), name="late")
    assert "good-rule" in host.registry("guardrails")


def test_unknown_name_lists_installed_names_and_first_party_packages() -> None:
    host = make_host(fp.entry_point("good", "good"))
    with pytest.raises(l0.ConfigError) as info:
        host.registry("guardrails").get("nope")
    assert "unknown guardrail 'nope'" in info.value.message
    assert "custom_pattern, good-rule" in info.value.message
    (kind, name), package = next(iter(plugins.FIRST_PARTY.items()))
    with pytest.raises(l0.ConfigError, match=f"pip install {package}"):
        host.registry(kind).get(name)


def test_record_to_dict_is_json_shaped() -> None:
    host = make_host(fp.dist_entry_point("good", "good", "l0-good", "2.3"))
    host.build_all()
    d = record(host, "good").to_dict()
    assert d == {
        "name": "good", "distribution": "l0-good", "version": "2.3", "status": "loaded",
        "reason": None,
        "hooks": ["l0_register_guardrails", "l0_register_observers",
                  "l0_register_retry_policies"],
        "registered": {"guardrails": ["good-rule"], "retry_policies": ["good-policy"],
                       "observers": ["good-observer"]},
    }


# -- registration hooks reach l0.run ------------------------------------------------------------


async def test_l0_register_guardrails_rule_is_created_fresh_per_session() -> None:
    made: list[Any] = []

    class Counting:
        name = "counting"
        streaming = True

        def __init__(self, limit: int = 1) -> None:
            self.limit, self.seen = limit, 0
            made.append(self)

        def check_delta(self, delta: str, offset: int) -> list[l0.Violation]:
            self.seen += 1
            if self.seen > self.limit:
                return [l0.Violation(self.name, "too many", "warning")]
            return []

        def check_complete(self, content: str) -> None:
            return None

    class P:
        @l0.hookimpl
        def l0_register_guardrails(self, register: Any) -> None:
            register(Counting)

    plugins.reset_host(make_host())
    l0.register_plugin(P())
    for _ in range(2):
        stream = l0.run(check_intervals=EVERY_TOKEN,
                        stream=ScriptedSource([Script(["a", "b", "c"])]),
                        guardrails=[l0.Guardrails.by_name("counting", limit=2)])
        assert await stream.read() == "abc"
        assert [v.message for v in stream.state.violations] == ["too many"]
    assert len(made) == 2
    assert all(r.limit == 2 for r in made)


async def test_l0_register_retry_policies_policy_by_name_in_run() -> None:
    plugins.reset_host(make_host(fp.entry_point("good", "good")))
    source = ScriptedSource([Script([])] * 5 + [Script(["ok"])])  # five ZERO_OUTPUTs
    with instant_backoff():
        stream = l0.run(stream=source, retry="good-policy")
        text = await stream.read()
    assert text == "ok"
    assert source.calls == 6


async def test_l0_register_observers_observer_by_name_in_config(tmp_path: Any) -> None:
    seen: list[str] = []

    class Recorder:
        name = "recorder"

        def __init__(self, prefix: str = "") -> None:
            self.prefix = prefix

        def on_event(self, event: l0.ObservabilityEvent) -> None:
            seen.append(self.prefix + event.type.value)

    class P:
        @l0.hookimpl
        def l0_register_observers(self, register: Any) -> None:
            register(Recorder)

    plugins.reset_host(make_host())
    l0.register_plugin(P())
    (tmp_path / "l0.toml").write_text('observers = [{ name = "recorder", prefix = "R:" }]\n')
    cfg = l0_config.load(environ={})
    await l0.run(stream=ScriptedSource([Script(["x"])]), config=cfg).read()
    assert seen[0] == "R:SESSION_START"
    assert seen[-1] == "R:SESSION_END"


async def test_l0_register_adapters_adapter_is_detected_from_the_first_item() -> None:
    class Pair:
        def __init__(self, text: str) -> None:
            self.text = text

    class Session:
        def feed(self, item: Pair) -> str:
            return item.text

        def finish(self) -> l0.Finish:
            return l0.Finish("stop")

    class PairAdapter:
        name = "pairs"

        def detect(self, item: Any) -> bool:
            return isinstance(item, Pair)

        def open(self, options: Any = None) -> Session:
            return Session()

    class P:
        @l0.hookimpl
        def l0_register_adapters(self, register: Any) -> None:
            register(PairAdapter())

    plugins.reset_host(make_host())
    l0.register_plugin(P())

    async def pairs() -> Any:
        for t in ("x", "y"):
            yield Pair(t)

    assert await l0.run(stream=pairs).read() == "xy"
    assert await l0.run(stream=pairs, adapter="pairs").read() == "xy"


def test_adapter_without_open_is_recorded() -> None:
    class NoOpen:
        name = "no-open"

        def detect(self, item: Any) -> bool:
            return False

    class P:
        @l0.hookimpl
        def l0_register_adapters(self, register: Any) -> None:
            register(NoOpen())

    host = make_host()
    rec = host.register(P(), name="p")
    host.registry("adapters")
    assert rec.reason is not None
    assert "without open()" in rec.reason


# -- boundary hooks ---------------------------------------------------------------------------


class Overloaded(Exception):
    pass


class ClassifyPlugin:
    @l0.hookimpl
    def l0_classify_error(self, error: BaseException) -> l0.Classification | None:
        if isinstance(error, Overloaded):
            return l0.Classification(l0.ErrorCode.RATE_LIMITED, 429, 0.0, "overloaded!")
        return None


async def test_l0_classify_error_maps_a_provider_exception() -> None:
    plugins.reset_host(make_host())
    l0.register_plugin(ClassifyPlugin())
    source = ScriptedSource([Script(["a"], fail_after=0, error=Overloaded("busy")),
                             Script(["ok"])])
    with instant_backoff():
        stream = l0.run(stream=source)
        assert await stream.read() == "ok"
    (err,) = stream.errors
    assert (err.code, err.status, err.retry_after, err.message) == (
        l0.ErrorCode.RATE_LIMITED, 429, 0.0, "overloaded!")
    assert isinstance(err.__cause__, Overloaded)


async def test_l0_classify_error_none_falls_back_to_generic_rules() -> None:
    plugins.reset_host(make_host())
    l0.register_plugin(ClassifyPlugin())
    source = ScriptedSource([Script(["a"], fail_after=0), Script(["ok"])])  # ConnectionReset
    with instant_backoff():
        stream = l0.run(stream=source)
        await stream.read()
    assert stream.errors[0].code is l0.ErrorCode.NETWORK_ERROR


async def test_l0_classify_error_that_raises_does_not_hide_the_error() -> None:
    class Broken:
        @l0.hookimpl
        def l0_classify_error(self, error: BaseException) -> None:
            raise RuntimeError("classifier bug")

    plugins.reset_host(make_host())
    l0.register_plugin(Broken())
    source = ScriptedSource([Script(["a"], fail_after=0), Script(["ok"])])
    with instant_backoff():
        stream = l0.run(stream=source)
        assert await stream.read() == "ok"
    assert stream.errors[0].code is l0.ErrorCode.NETWORK_ERROR


def test_l0_wrap_client_first_plugin_that_knows_the_client_wins() -> None:
    class Client:
        pass

    class Wrapper:
        @l0.hookimpl
        def l0_wrap_client(self, client: object, options: Any) -> object | None:
            if isinstance(client, Client):
                return ("wrapped", client, dict(options))
            return None

    plugins.reset_host(make_host())
    l0.register_plugin(Wrapper())
    client = Client()
    assert l0.wrap(client, retry="strict") == ("wrapped", client, {"retry": "strict"})
    with pytest.raises(l0.ConfigError, match="no installed plugin can wrap"):
        l0.wrap(object())

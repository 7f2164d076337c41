"""Registration is isolated per plugin: an implementation under another name
(``@hookimpl(specname=...)``) registers like any other, and whatever one plugin's
registration raises is recorded against that plugin and stops no one else."""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

import pytest

import l0_core as l0
from l0_core import cli
from l0_core.plugins import host as plugins
from l0_core.plugins.hookspecs import Register
from l0_core.plugins.host import PluginHost, PluginRecord
from tests.core import fake_plugins as fp


class SpecnamePlugin:
    """Implements the guardrail registration hook under a name of its own."""

    @l0.hookimpl(specname="l0_register_guardrails")
    def add_my_rules(self, register: Register) -> None:
        register(fp.rule_class("specname-rule"))


class SpecnameModuleStylePlugin:
    """Two hooks, one by its own name and one through ``specname``."""

    @l0.hookimpl
    def l0_register_guardrails(self, register: Register) -> None:
        register(fp.rule_class("by-hook-name"))

    @l0.hookimpl(specname="l0_register_observers")
    def observers(self, register: Register) -> None:
        register(type("SpecObserver", (), {"name": "spec-observer",
                                           "on_event": lambda self, event: None}))


class NoArgumentsPlugin:
    """A hookimpl may accept fewer arguments than the hook offers."""

    calls = 0

    @l0.hookimpl
    def l0_register_observers(self) -> None:
        NoArgumentsPlugin.calls += 1


class RaisesEverywherePlugin:
    """Two registration hooks, both raising (one not even an ``Exception``)."""

    @l0.hookimpl
    def l0_register_guardrails(self, register: Register) -> None:
        raise KeyError("no rules today")

    @l0.hookimpl
    def l0_register_observers(self, register: Register) -> None:
        raise SystemExit(3)


specname = SpecnamePlugin()
specname_mixed = SpecnameModuleStylePlugin()
no_arguments = NoArgumentsPlugin()
raises_everywhere = RaisesEverywherePlugin()


def entry_point(name: str, attr: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, f"{__name__}:{attr}", "l0")


def make_host(*entry_points: Any) -> PluginHost:
    return PluginHost(entry_points=lambda: list(entry_points))


def record(host: PluginHost, name: str) -> PluginRecord:
    (found,) = [r for r in host.records if r.name == name]
    return found


# -- specname --------------------------------------------------------------------------------


def test_specname_hookimpl_registers_its_names() -> None:
    host = make_host(entry_point("spec", "specname"))
    registry = host.registry("guardrails")  # raised AttributeError before the fix
    rec = record(host, "spec")
    assert (rec.status, rec.reason) == ("loaded", None)
    assert rec.hooks == ["l0_register_guardrails"]
    assert rec.registered == {"guardrails": ["specname-rule"]}
    assert registry.owner("specname-rule") is rec
    assert "json" in registry  # the built-ins are there too


def test_specname_plugin_does_not_break_the_others() -> None:
    host = make_host(
        fp.entry_point("good", "good"),
        entry_point("spec", "specname"),
        entry_point("mixed", "specname_mixed"),
    )
    host.build_all()
    guardrails = host.registry("guardrails")
    assert {"good-rule", "specname-rule", "by-hook-name", "json"} <= set(guardrails.names())
    assert "spec-observer" in host.registry("observers")
    assert record(host, "mixed").registered == {
        "guardrails": ["by-hook-name"], "observers": ["spec-observer"]}
    assert all(r.reason is None for r in host.records)


def test_specname_plugin_registered_from_code() -> None:
    plugins.reset_host(make_host())
    rec = l0.register_plugin(SpecnamePlugin(), name="spec-in-code")
    assert rec.status == "code"
    assert plugins.get_host().registry("guardrails").owner("specname-rule") is rec


def test_hookimpl_without_the_register_argument_is_called() -> None:
    NoArgumentsPlugin.calls = 0
    host = make_host(entry_point("no-args", "no_arguments"))
    host.registry("observers")
    assert NoArgumentsPlugin.calls == 1
    assert record(host, "no-args").reason is None


# -- a registration that raises ------------------------------------------------------------------


def test_raising_registration_is_recorded_and_the_others_still_register(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = make_host(
        entry_point("spec", "specname"),
        fp.entry_point("raising", "raising"),
        fp.entry_point("good", "good"),
    )
    with caplog.at_level(logging.WARNING, logger="l0"):
        registry = host.registry("guardrails")
    rec = record(host, "raising")
    # docs/plugins.md: the plugin stays loaded (its other hooks still count), with the reason
    assert rec.status == "loaded"
    assert rec.reason == "l0_register_guardrails raised RuntimeError: registration exploded"
    assert rec.registered == {"guardrails": ["before-the-crash"]}
    assert "registration exploded" in caplog.text
    assert {"json", "specname-rule", "good-rule"} <= set(registry.names())
    assert record(host, "builtins").reason is None
    assert record(host, "good").registered["guardrails"] == ["good-rule"]


def test_every_failing_hook_is_recorded_once_even_when_rebuilt() -> None:
    host = make_host(entry_point("broken", "raises_everywhere"), fp.entry_point("good", "good"))
    host.build_all()  # SystemExit from a plugin is a broken plugin, not the end of the process
    expected = ("l0_register_guardrails raised KeyError: 'no rules today'; "
                "l0_register_observers raised SystemExit: 3")
    rec = record(host, "broken")
    assert rec.reason == expected
    host.register(SpecnamePlugin(), name="late")  # clears the registries: they are rebuilt
    host.build_all()
    assert rec.reason == expected
    assert "good-observer" in host.registry("observers")
    assert "specname-rule" in host.registry("guardrails")


def test_l0_plugins_shows_the_failed_registration(capsys: pytest.CaptureFixture[str]) -> None:
    plugins.reset_host(make_host(
        entry_point("spec", "specname"), entry_point("broken", "raises_everywhere")))
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "guardrails: specname-rule" in out
    assert "reason:" in out
    assert "l0_register_guardrails raised KeyError: 'no rules today'" in out

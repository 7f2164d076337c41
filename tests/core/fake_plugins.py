"""Plugin modules and entry points for the plugin-host tests (not a test module).

Each plugin is a class whose instances carry hookimpls; an entry point names an
instance as ``fake_plugins:<attribute>``, as a real distribution names a module.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any

import l0_core as l0
from l0_core import Retry
from l0_core.plugins.hookspecs import Register
from l0_core.runtime.retry import NamedRetryPolicy


def entry_point(name: str, attr: str) -> importlib.metadata.EntryPoint:
    """A real EntryPoint (no distribution) pointing at an object in this module."""
    return importlib.metadata.EntryPoint(name, f"{__name__}:{attr}", "l0")


@dataclass(frozen=True)
class _Dist:
    name: str
    version: str


@dataclass(frozen=True)
class DistEntryPoint:
    """An entry point that belongs to a (pretend) installed distribution."""

    name: str
    value: str
    dist: _Dist
    group: str = "l0"

    def load(self) -> Any:
        return importlib.metadata.EntryPoint(self.name, self.value, self.group).load()


def dist_entry_point(name: str, attr: str, dist: str, version: str = "1.0") -> DistEntryPoint:
    return DistEntryPoint(name, f"{__name__}:{attr}", _Dist(dist, version))


class _Rule:
    streaming = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def check_delta(self, delta: str, offset: int) -> None:
        return None

    def check_complete(self, content: str) -> None:
        return None


def rule_class(rule_name: str) -> type:
    return type(f"Rule_{rule_name}", (_Rule,), {"name": rule_name})


class GoodPlugin:
    """Registers one thing of every kind."""

    @l0.hookimpl
    def l0_register_guardrails(self, register: Register) -> None:
        register(rule_class("good-rule"))

    @l0.hookimpl
    def l0_register_retry_policies(self, register: Register) -> None:
        policy = NamedRetryPolicy("good-policy", lambda **o: Retry(attempts=9, **o))
        register(policy)

    @l0.hookimpl
    def l0_register_observers(self, register: Register) -> None:
        register(type("GoodObserver", (), {"name": "good-observer",
                                           "on_event": lambda self, event: None}))


class DuplicatePlugin:
    """Registers a guardrail name GoodPlugin also registers."""

    @l0.hookimpl
    def l0_register_guardrails(self, register: Register) -> None:
        register(rule_class("good-rule"))
        register(rule_class("only-in-duplicate"))


class MisspeltPlugin:
    """``l0_register_guardrail`` (no final s) is not a hook: the plugin is rejected."""

    @l0.hookimpl
    def l0_register_guardrail(self, register: Register) -> None:
        register(rule_class("misspelt-rule"))

    @l0.hookimpl
    def l0_register_observers(self, register: Register) -> None:  # valid, but never used
        register(type("Never", (), {"name": "never-observer", "on_event": lambda s, e: None}))


class RaisingPlugin:
    """Registers one rule, then its registration hook raises."""

    @l0.hookimpl
    def l0_register_guardrails(self, register: Register) -> None:
        register(rule_class("before-the-crash"))
        raise RuntimeError("registration exploded")


class BadNamePlugin:
    """Registers a guardrail whose name has a space in it."""

    @l0.hookimpl
    def l0_register_guardrails(self, register: Register) -> None:
        register(rule_class("has space"))


good = GoodPlugin()
duplicate = DuplicatePlugin()
misspelt = MisspeltPlugin()
raising = RaisingPlugin()
bad_name = BadNamePlugin()

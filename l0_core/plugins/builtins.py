"""L0's built-in plugins, registered through the same hooks as third-party ones."""

from __future__ import annotations

import logging

from l0_core.events import ObservabilityEvent
from l0_core.guardrails.rule import CustomPatternRule
from l0_core.guardrails.rules import BUILTIN_RULES
from l0_core.guardrails.rules.presets import preset_factories
from l0_core.plugins.hookspecs import Register, hookimpl
from l0_core.runtime.adapters import EventsAdapter, TextAdapter
from l0_core.runtime.retry import PRESETS, NamedRetryPolicy

__all__ = ["LoggingObserver"]


class LoggingObserver:
    """Logs every observability event to the ``l0.events`` logger."""

    name = "logging"

    def __init__(self, level: str | int = "INFO", logger: str = "l0.events") -> None:
        self._log = logging.getLogger(logger)
        self._level = logging.getLevelName(level) if isinstance(level, str) else level

    def on_event(self, event: ObservabilityEvent) -> None:
        if self._log.isEnabledFor(self._level):
            self._log.log(self._level, "%s %s %s", event.stream_id, event.type.value, {
                k: v for k, v in event.meta.items() if not k.startswith("_")
            })


@hookimpl
def l0_register_adapters(register: Register) -> None:
    register(TextAdapter())
    register(EventsAdapter())


@hookimpl
def l0_register_guardrails(register: Register) -> None:
    for rule in BUILTIN_RULES:
        register(rule)
    register(CustomPatternRule)
    for preset in preset_factories():  # so that config accepts preset names
        register(preset)


@hookimpl
def l0_register_retry_policies(register: Register) -> None:
    for name, factory in PRESETS.items():
        register(NamedRetryPolicy(name, factory))


@hookimpl
def l0_register_observers(register: Register) -> None:
    register(LoggingObserver)


@hookimpl
def l0_register_stores(register: Register) -> None:
    # imported here: the stores (sqlite3 among them) load only when a store is opened
    from l0_core.record.sqlite import SQLiteStore
    from l0_core.record.store import MemoryStore

    register(MemoryStore)
    register(SQLiteStore)



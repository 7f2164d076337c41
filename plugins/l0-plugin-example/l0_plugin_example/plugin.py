"""The plugin module: the entry point ``example = "l0_plugin_example.plugin"`` names it.

Each function below implements one hook of the L0 plugin contract
(``l0_core.plugins.hookspecs``) and is marked with ``@l0_core.hookimpl``. The hook names
and argument names must match the contract exactly: a misspelt hook makes L0
reject the whole plugin (``l0 plugins`` shows why). Keep this module cheap to
import: it is imported in every process that uses L0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import l0_core
from l0_core import Classification
from l0_core.plugins.hookspecs import Register
from l0_plugin_example.adapter import DictStreamAdapter
from l0_plugin_example.client import ExampleClient, WrappedExampleClient, classify
from l0_plugin_example.guardrail import BannedWordsRule
from l0_plugin_example.observer import EventCounter
from l0_plugin_example.policy import PatientRetryPolicy

__all__ = [
    "l0_classify_error",
    "l0_register_adapters",
    "l0_register_guardrails",
    "l0_register_observers",
    "l0_register_retry_policies",
    "l0_wrap_client",
]


@l0_core.hookimpl
def l0_register_adapters(register: Register) -> None:
    """Adapters are registered as instances (they hold no per-stream state)."""
    register(DictStreamAdapter())


@l0_core.hookimpl
def l0_register_guardrails(register: Register) -> None:
    """Rules are registered as classes: L0 makes a fresh rule per session from options."""
    register(BannedWordsRule)


@l0_core.hookimpl
def l0_register_retry_policies(register: Register) -> None:
    """A policy is a named factory returning ``l0_core.Retry``."""
    register(PatientRetryPolicy())


@l0_core.hookimpl
def l0_register_observers(register: Register) -> None:
    """Observers are registered as classes: one instance per session."""
    register(EventCounter)


@l0_core.hookimpl
def l0_classify_error(error: BaseException) -> Classification | None:
    """Map the toy SDK's exceptions to L0 error codes; ``None`` lets others try."""
    return classify(error)


@l0_core.hookimpl
def l0_wrap_client(client: object, options: Mapping[str, Any]) -> object | None:
    """``l0.wrap(ExampleClient())``; ``None`` for clients this plugin does not know."""
    if isinstance(client, ExampleClient):
        return WrappedExampleClient(client, options)
    return None

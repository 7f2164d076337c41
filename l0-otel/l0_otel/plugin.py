"""The L0 plugin module: the entry point ``otel = "l0_otel.plugin"`` names it.

Kept cheap to import (it is imported in every process that uses L0): the observer's
module imports only the OpenTelemetry API.
"""

from __future__ import annotations

import l0_core
from l0_core.plugins.hookspecs import Register
from l0_otel.observer import OtelObserver

__all__ = ["l0_register_observers"]


@l0_core.hookimpl
def l0_register_observers(register: Register) -> None:
    """``otel``: a class, so L0 makes one observer per session (options from config)."""
    register(OtelObserver)

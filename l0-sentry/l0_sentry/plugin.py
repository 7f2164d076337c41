"""The L0 plugin of l0-sentry (entry point ``sentry`` in the ``l0`` group).

* ``l0_register_observers``: the ``sentry`` observer (``observers=["sentry"]``).

Loading this module imports sentry-sdk only when the observer is first needed.
"""

from __future__ import annotations

from l0_core.plugins.hookspecs import Register, hookimpl

__all__ = ["l0_register_observers"]


@hookimpl
def l0_register_observers(register: Register) -> None:
    from l0_sentry.observer import SentryObserver

    register(SentryObserver)

"""The L0 plugin of l0-store-redis (entry point ``redis`` in the ``l0`` group).

* ``l0_register_stores``: the ``redis://``, ``rediss://`` (TLS) and ``unix://``
  (a Unix socket: ``unix:///run/redis.sock?db=0``) stores.

Loading this module imports the redis client only when a store is opened.
"""

from __future__ import annotations

from typing import Any

from l0_core.plugins.hookspecs import Register, hookimpl

__all__ = ["l0_register_stores"]


def _factory(scheme: str) -> Any:
    def open_redis(url: str) -> Any:
        from l0_store_redis.store import RedisStore

        return RedisStore(url)

    open_redis.name = scheme  # type: ignore[attr-defined]
    return open_redis


@hookimpl
def l0_register_stores(register: Register) -> None:
    for scheme in ("redis", "rediss", "unix"):
        register(_factory(scheme))

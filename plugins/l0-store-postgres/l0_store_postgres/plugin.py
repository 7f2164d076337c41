"""The L0 plugin of l0-store-postgres (entry point ``postgresql`` in the ``l0`` group).

* ``l0_register_stores``: the ``postgresql://`` and ``postgres://`` stores
  (libpq URLs: ``postgresql://user:password@host:5432/db``,
  ``postgresql://user@/db?host=/run/postgresql`` for a Unix socket).

Loading this module imports psycopg only when a store is opened.
"""

from __future__ import annotations

from typing import Any

from l0_core.plugins.hookspecs import Register, hookimpl

__all__ = ["l0_register_stores"]


def _factory(scheme: str) -> Any:
    def open_postgres(url: str) -> Any:
        from l0_store_postgres.store import PostgresStore

        return PostgresStore(url)

    open_postgres.name = scheme  # type: ignore[attr-defined]
    return open_postgres


@hookimpl
def l0_register_stores(register: Register) -> None:
    for scheme in ("postgresql", "postgres"):
        register(_factory(scheme))

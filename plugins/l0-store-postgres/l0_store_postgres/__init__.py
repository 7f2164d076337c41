"""l0-store-postgres: recorded L0 sessions in PostgreSQL, shared by many workers.

Installing it registers the ``postgresql://`` (and ``postgres://``) store URLs
(``store = "postgresql://user@host/db"`` in ``l0.toml``, ``L0_STORE``, or
``l0.open_store(url)``). See ``docs/scale-out.md``.
"""

from __future__ import annotations

from l0_store_postgres.store import PostgresStore

__all__ = ["PostgresStore"]

"""l0-store-redis: recorded L0 sessions in Redis Streams, shared by many workers.

Installing it registers the ``redis://``, ``rediss://`` and ``unix://`` store
URLs (``store = "redis://localhost:6379/0"`` in ``l0.toml``, ``L0_STORE``, or
``l0.open_store(url)``). See ``docs/scale-out.md``.
"""

from __future__ import annotations

from l0_store_redis.store import RedisStore

__all__ = ["RedisStore"]

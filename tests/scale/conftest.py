"""The servers the scale-out tests run against (session-scoped: started once)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from l0_core.record.store import close_stores, open_store
from tests.scale.servers import (
    postgres_url_for,
    redis_url_for,
    start_postgres,
    start_redis,
    stop_postgres,
    stop_redis,
)

STORES = ["memory", "sqlite", "redis", "postgresql"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        stop_redis(server)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    # not under pytest's tmp_path: PostgreSQL refuses to run as root, so pgserver runs it as
    # a user of its own, who cannot enter pytest's private folders
    with tempfile.TemporaryDirectory(prefix="l0-pg-") as folder:
        server, url = start_postgres(Path(folder))
        try:
            yield url
        finally:
            stop_postgres(server)


def url_of(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of ``kind`` (a new key prefix, schema, file or name)."""
    if kind == "redis":
        return redis_url_for(request.getfixturevalue("redis_server"))
    if kind == "postgresql":
        return postgres_url_for(request.getfixturevalue("postgres_server"))
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/events-{uuid.uuid4().hex[:8]}.db"
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
async def redis_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh Redis URL; the stores opened meanwhile are closed afterwards."""
    yield url_of("redis", request, tmp_path)
    await close_stores()


@pytest.fixture
async def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh PostgreSQL URL; the stores opened meanwhile are closed afterwards."""
    yield url_of("postgresql", request, tmp_path)
    await close_stores()


@pytest.fixture(params=STORES)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Each of the four stores, fresh and empty; closed afterwards."""
    yield open_store(url_of(request.param, request, tmp_path))
    await close_stores()


@pytest.fixture(params=["redis", "postgresql"])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh URL of each store that workers share; its stores are closed afterwards."""
    yield url_of(request.param, request, tmp_path)
    await close_stores()

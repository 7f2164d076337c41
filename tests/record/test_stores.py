"""The store protocol, its registry by URL scheme, and the built-in memory and SQLite stores."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.plugins import config as l0_config
from l0_core.plugins import host as l0_host
from l0_core.record import MemoryStore, Record, Store, open_store
from l0_core.record.sqlite import SQLiteStore


def _records(start: int, n: int, kind: str = "token") -> list[Record]:
    return [Record(i, 1000.0 + i, kind, f"t{i}") for i in range(start, start + n)]


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield open_store(f"memory://{uuid.uuid4().hex}")
    else:
        made = open_store(f"sqlite:///{tmp_path}/events.db")
        yield made
        await made.close()


async def test_append_read_info_list_delete(store: Any) -> None:
    assert isinstance(store, Store)
    await store.append("a", [Record(0, 1.0, "session", {"format": 1}), *_records(1, 3)],
                       {"model": "m", "outcome": "running"})
    await store.append("a", _records(4, 2), {"outcome": "completed"})
    await store.append("b", _records(0, 1))
    records = await store.read("a")
    assert [r.seq for r in records] == [0, 1, 2, 3, 4, 5]
    assert records[0] == Record(0, 1.0, "session", {"format": 1})
    assert [r.data for r in records[1:]] == ["t1", "t2", "t3", "t4", "t5"]
    assert [r.seq for r in await store.read("a", 4)] == [4, 5]
    assert [r.seq for r in await store.read("a", 2, limit=2)] == [2, 3]
    assert await store.read("a", 6) == []
    info = await store.info("a")
    assert info is not None
    assert (info.stream_id, info.length) == ("a", 6)
    assert info.meta == {"model": "m", "outcome": "completed"}  # merged, not replaced
    assert await store.info("missing") is None
    assert {i.stream_id for i in await store.list()} == {"a", "b"}
    assert len(await store.list(limit=1)) == 1
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    with pytest.raises(l0.RecordingError, match="no recorded session 'a'"):
        await store.read("a")


async def test_a_batch_that_does_not_continue_the_log_is_refused_whole(store: Any) -> None:
    await store.append("s", _records(0, 3))
    for wrong in (_records(2, 2), _records(4, 1), [*_records(3, 1), *_records(5, 1)]):
        with pytest.raises(l0.RecordingError, match="does not follow") as info:
            await store.append("s", wrong)
        assert info.value.code is l0.ErrorCode.RECORDING_ERROR
    assert [r.seq for r in await store.read("s")] == [0, 1, 2]  # nothing of them was kept
    await store.append("s", _records(3, 1))
    assert (await store.info("s")).length == 4


async def test_expire_removes_streams_not_updated_for_a_while(store: Any) -> None:
    await store.append("old", _records(0, 1))
    await asyncio.sleep(0.05)
    await store.append("new", _records(0, 1))
    assert await store.expire(0.03) == 1
    assert [i.stream_id for i in await store.list()] == ["new"]
    assert await store.expire(3600) == 0


async def test_open_store_returns_one_store_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/one.db"
    assert open_store(url) is open_store(url)
    assert isinstance(open_store(url), SQLiteStore)
    assert isinstance(open_store("memory://x"), MemoryStore)
    assert open_store("memory://x") is not open_store("memory://y")
    await open_store(url).close()


async def test_unknown_scheme_lists_the_installed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    # as on a machine without the Redis and PostgreSQL stores
    monkeypatch.setenv("L0_DISABLE_PLUGINS", "l0-store-redis,l0-store-postgres")
    l0_host.reset_host()
    with pytest.raises(l0.ConfigError, match=r"no installed store handles mongo:// URLs\. "
                                             r"Installed stores: memory://, sqlite://"):
        open_store("mongo://localhost/x")
    with pytest.raises(l0.ConfigError, match="l0-store-redis"):
        open_store("redis://localhost:6379/0")
    with pytest.raises(l0.ConfigError, match="not a store URL"):
        open_store("events.db")


async def test_a_plugin_registers_a_store_through_l0_register_stores() -> None:
    class JarStore(MemoryStore):
        name = "jar"

    class Plugin:
        @l0.hookimpl
        def l0_register_stores(self, register: Any) -> None:
            register(JarStore)

    l0.register_plugin(Plugin())
    store = open_store("jar://one")
    assert type(store) is JarStore and store.url == "jar://one"


async def test_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "events.db"
    store = open_store(f"sqlite:///{path}")
    await store.append("a", _records(0, 1))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    import sqlite3

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    await store.close()


async def test_relative_sqlite_urls_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///.l0/rel-events.db")
    await store.append("a", _records(0, 1))
    assert (tmp_path / ".l0" / "rel-events.db").is_file()
    await store.close()


async def test_the_store_is_configured_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l0.toml").write_text('store = "sqlite:///.l0/events.db"\n')
    cfg = l0_config.load(environ={})
    assert cfg.store == "sqlite:///.l0/events.db"
    assert cfg.describe()["store"]["source"].endswith("l0.toml")
    cfg = l0_config.load(environ={"L0_STORE": "memory://env"})
    assert (cfg.store, cfg.sources["store"]) == ("memory://env", "L0_STORE")
    (tmp_path / "l0.toml").write_text('store = "mongo://x"\n')
    with pytest.raises(l0.ConfigError, match="key 'store': no installed store handles mongo://"):
        l0_config.load(environ={})

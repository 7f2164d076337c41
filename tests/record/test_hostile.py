"""Corrupt and hostile recordings give a typed error and lose nothing else; a slow or
failing store never hurts the session it records."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.record import MemoryStore, Record, open_store
from l0_core.record import recorder as recorder_module
from l0_core.record import sqlite as sqlite_module
from l0_core.record.sqlite import SQLiteStore
from l0_core.testing import Script, ScriptedSource


async def _recorded(url: str, text: str) -> str:
    stream = l0.run(stream=ScriptedSource([Script(list(text))]), record=url)
    assert await stream.read() == text
    await stream.recording.wait()
    return stream.id


async def _two_sessions(tmp_path: Path) -> tuple[str, str, str, Path]:
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    good = await _recorded(url, "good session")
    bad = await _recorded(url, "bad session")
    await open_store(url).close()
    return url, good, bad, path


def _sql(path: Path, statement: str, *args: Any) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement, args)
    conn.commit()
    conn.close()


def _fresh(url: str) -> SQLiteStore:
    """A new store object on the same file (what another process would open)."""
    return SQLiteStore(url)


@pytest.mark.parametrize(("corruption", "message"), [
    ("UPDATE events SET data = '[[1.0, \"token\", \"x\"' WHERE stream_id = ?", "not valid JSON"),
    ("UPDATE events SET data = '[]' WHERE stream_id = ?", "does not hold"),
    ("UPDATE events SET data = '[[1.0, 2, 3]]', count = 1 WHERE stream_id = ?", "malformed"),
    ("DELETE FROM events WHERE stream_id = ? AND seq > 0 AND seq < 3", "missing"),
])
async def test_a_corrupt_session_is_a_typed_error_and_the_others_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corruption: str, message: str
) -> None:
    monkeypatch.setattr(sqlite_module, "ROW_RECORDS", 2)  # several rows per session
    url, good, bad, path = await _two_sessions(tmp_path)
    _sql(path, corruption, bad)
    store = _fresh(url)
    with pytest.raises(l0.RecordingError, match=message) as info:
        await l0.replay(bad, store=store).read()
    assert info.value.code is l0.ErrorCode.RECORDING_ERROR
    assert await l0.replay(good, store=store).read() == "good session"
    assert {i.stream_id for i in await store.list()} == {good, bad}
    await store.close()


async def test_a_huge_row_is_refused_without_being_loaded(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    url, good, bad, path = await _two_sessions(tmp_path)
    _sql(path, "UPDATE events SET data = ? WHERE stream_id = ?", "[" + " " * 5000 + "]", bad)
    monkeypatch.setattr(sqlite_module, "MAX_ROW_BYTES", 4096)
    store = _fresh(url)
    with pytest.raises(l0.RecordingError, match="larger than the 4096"):
        await store.read(bad)
    assert await l0.replay(good, store=store).read() == "good session"
    await store.close()


async def test_a_wrong_schema_version_is_a_typed_error(tmp_path: Path) -> None:
    url, good, _, path = await _two_sessions(tmp_path)
    _sql(path, "PRAGMA user_version = 7")
    store = _fresh(url)
    with pytest.raises(l0.RecordingError, match="schema version 7; this version of L0 reads "
                                                 "version 1") as info:
        await store.list()
    assert info.value.metadata["schema_version"] == 7
    _sql(path, "PRAGMA user_version = 1")
    assert await l0.replay(good, store=_fresh(url)).read() == "good session"  # nothing lost


async def test_a_file_that_is_not_an_l0_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    _sql(other, "CREATE TABLE users (name TEXT)")
    with pytest.raises(l0.RecordingError, match="not an L0 store"):
        await _fresh(f"sqlite:///{other}").list()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"definitely not sqlite " * 100)
    with pytest.raises(l0.RecordingError, match="not a readable SQLite file"):
        await _fresh(f"sqlite:///{garbage}").list()
    assert garbage.read_bytes() == b"definitely not sqlite " * 100
    conn = sqlite3.connect(other)
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 1
    conn.close()


async def test_a_truncated_file_is_a_typed_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "ROW_RECORDS", 1)
    path = tmp_path / "big.db"
    url = f"sqlite:///{path}"
    ids = [await _recorded(url, "some text " * 30) for _ in range(5)]
    await open_store(url).close()
    _sql(path, "PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)
    store = _fresh(url)
    with pytest.raises(l0.RecordingError):
        for stream_id in ids:
            await l0.replay(stream_id, store=store).read()
    await store.close()


async def test_recording_to_a_broken_store_leaves_the_session_untouched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "app.db"
    _sql(other, "CREATE TABLE users (name TEXT)")
    caplog.set_level(logging.WARNING, "l0")
    stream = l0.run(stream=ScriptedSource([Script(["still", " fine"])]),
                    record=f"sqlite:///{other}")
    assert await stream.read() == "still fine"
    await stream.recording.wait()
    assert isinstance(stream.recording.error, l0.RecordingError)
    assert "the session goes on unrecorded" in caplog.text


class SlowStore(MemoryStore):
    """A store slower than the stream: each append waits until released."""

    name = "slow"

    def __init__(self, url: str = "slow://") -> None:
        super().__init__(url)
        self.release = threading.Event()

    def append_sync(self, stream_id: str, records: Sequence[Record],
                    meta: Any = None) -> None:
        self.release.wait(10)
        super().append_sync(stream_id, records, meta)


async def test_a_store_slower_than_the_stream_drops_the_rest_and_says_so(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "MAX_PENDING", 600)
    store = SlowStore(f"slow://{uuid.uuid4().hex}")
    text = "".join(f"w{i} " for i in range(2000))
    stream = l0.run(stream=ScriptedSource([Script(text.split(" ")[:-1])]), record=store)
    started = time.monotonic()
    assert len(await stream.read()) > 0  # the session never waits for the store
    assert time.monotonic() - started < 5
    store.release.set()
    await stream.recording.wait()
    assert stream.recording.dropped > 0
    records = await store.read(stream.id)
    assert [r.seq for r in records] == list(range(len(records)))
    assert records[-1].type == "dropped"
    assert records[-1].data["count"] == stream.recording.dropped
    info = await store.info(stream.id)
    assert info is not None and info.meta["dropped"] == stream.recording.dropped
    with pytest.raises(l0.RecordingError, match="incomplete"):
        await l0.replay(stream.id, store=store).read()


def _append_at_once(store: SQLiteStore, name: str, barrier: threading.Barrier,
                    errors: list[BaseException]) -> None:
    barrier.wait()
    try:
        store.append_sync(name, [Record(0, 1.0, "session", {})])
    except BaseException as exc:
        errors.append(exc)


def test_connections_opening_a_new_file_at_once_all_see_an_l0_store(tmp_path: Path) -> None:
    # Found by the two-process test: a connection that read the schema while another was
    # creating it saw tables but no L0 mark, and refused the file.
    for round_ in range(15):
        url = f"sqlite:///{tmp_path}/race-{round_}.db"
        stores = [SQLiteStore(url) for _ in range(6)]
        barrier = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        threads = [threading.Thread(target=_append_at_once, args=(s, f"s{i}", barrier, errors))
                   for i, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(r[0] for r in sqlite3.connect(tmp_path / f"race-{round_}.db")
                      .execute("SELECT stream_id FROM streams")) == [f"s{i}" for i in range(6)]

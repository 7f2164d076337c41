"""The SQLite store: recorded sessions in one local file (``sqlite:///path/events.db``).

The URL is read like SQLAlchemy's: ``sqlite:///.l0/events.db`` is a path
relative to the current directory, ``sqlite:////var/lib/app/events.db`` an
absolute one.

Layout (schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``;
``PRAGMA application_id`` marks the file as an L0 store):

- ``events(stream_id, seq, count, data)``, primary key ``(stream_id, seq)``:
  each row holds ``count`` consecutive records from ``seq`` on, as one JSON
  array of ``[ts, type, data]`` (a row per appended batch, at most
  :data:`ROW_RECORDS` records). One row per batch instead of one per event is
  what makes the store keep up with a token stream: an insert and a JSON
  encoding per batch, not per token (``docs/benchmarks.md``).
- ``streams(stream_id, length, created, updated, meta)``: one row per session,
  updated in the same transaction as its events, so that listing never reads
  the logs and ``length`` always equals the records stored.

The file is created ``0600`` (recordings hold prompts and outputs), in WAL
mode with ``synchronous=NORMAL`` (a committed batch survives the process
being killed; an OS crash may lose the last ones), and a busy timeout so that
several processes can write to one file. Rows are JSON text only; a row that
is not valid JSON, breaks the sequence, or exceeds :data:`MAX_ROW_BYTES` gives a
``RecordingError`` for that session and nothing else. Rows are written no larger
than that (a batch is split by size too; a single record larger than a row may
be is refused when written, so the log stays readable).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from l0_core.errors import ConfigError
from l0_core.record.store import (
    Record,
    StreamInfo,
    check_age,
    check_batch,
    check_read,
    check_records,
    recording_error,
)

__all__ = ["MAX_ROW_BYTES", "ROW_RECORDS", "SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4C305245  # "L0RE"
ROW_RECORDS = 512  # records per row at most
MAX_ROW_BYTES = 32 * 1024 * 1024  # characters per row at most (written and read)
BUSY_TIMEOUT_S = 30.0
_new = tuple.__new__
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # SQLite's result codes

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS streams (stream_id TEXT PRIMARY KEY, length INTEGER NOT NULL, "
    "created REAL NOT NULL, updated REAL NOT NULL, meta TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS streams_updated ON streams (updated)",
    "CREATE TABLE IF NOT EXISTS events (stream_id TEXT NOT NULL, seq INTEGER NOT NULL, "
    "count INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (stream_id, seq)) WITHOUT ROWID",
)


def path_of(url: str) -> Path:
    """The file of a ``sqlite:///...`` URL."""
    rest = url.split("://", 1)[1] if "://" in url else url
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(
            f"store: {url!r}: a SQLite store URL is sqlite:///relative/path.db or "
            f"sqlite:////absolute/path.db")
    path = rest[1:].split("?", 1)[0]
    if not path:
        raise ConfigError(f"store: {url!r} names no file")
    return Path(path)


def _make_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each 0700 (recordings are private)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        try:
            new.mkdir(mode=0o700)
        except FileExistsError:  # made by another process meanwhile
            pass


class SQLiteStore:
    """Recorded sessions in one SQLite file. See the module documentation."""

    name = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = path_of(url).absolute()  # the file of the directory it was opened in
        self._lock = threading.Lock()  # one connection, used by one thread at a time
        self._conn: sqlite3.Connection | None = None

    @staticmethod
    def cache_key(url: str) -> str:
        """URLs naming one file name one store (``open_store`` keeps one per file)."""
        return f"sqlite:{path_of(url).absolute()}"

    # -- the connection ----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._open()
        return conn

    def _open(self) -> sqlite3.Connection:
        path = self.path
        try:
            _make_dirs(path.parent)
            if not path.exists():  # created 0600 before SQLite opens it (-wal/-shm follow)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise recording_error(f"cannot open the store {self.url}: {exc}",
                                  url=self.url) from exc
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:  # one snapshot: another process may be creating the schema right now
            conn.execute("BEGIN")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # not a database, or truncated
            raise recording_error(
                f"{self.path} is not a readable SQLite file ({exc}); move it away or point "
                f"the store at another file", url=self.url) from exc
        if tables and app_id != APPLICATION_ID:
            raise recording_error(
                f"{self.path} is a SQLite file, but not an L0 store; choose another file",
                url=self.url)
        if tables and version != SCHEMA_VERSION:
            raise recording_error(
                f"{self.path} has L0 store schema version {version}; this version of L0 "
                f"reads version {SCHEMA_VERSION}", url=self.url, schema_version=version)
        try:
            _wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            if not tables:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                        for statement in _SCHEMA:
                            conn.execute(statement)
                        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise recording_error(f"cannot prepare the store {self.url}: {exc}",
                                  url=self.url) from exc

    def _run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            try:
                return fn(self._connection(), *args)
            except sqlite3.Error as exc:
                raise recording_error(f"store {self.url}: {exc}", url=self.url) from exc

    # -- writing -----------------------------------------------------------------------------

    def append_sync(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        """:meth:`append` in the calling thread (the recorder's writer thread)."""
        check_records(stream_id, records)
        rows = list(_rows(stream_id, records))  # encoded before the transaction starts
        self._run(self._append, stream_id, records, rows, meta)

    @staticmethod
    def _append(conn: sqlite3.Connection, stream_id: str, records: Sequence[Record],
                rows: list[tuple[str, int, int, str]],
                meta: Mapping[str, Any] | None) -> None:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute("SELECT length, meta FROM streams WHERE stream_id = ?",
                                 (stream_id,)).fetchone()
            length = found[0] if found else 0
            check_batch(stream_id, length, records)
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
            if found is None:
                conn.execute("INSERT INTO streams VALUES (?, ?, ?, ?, ?)",
                             (stream_id, len(records), now, now, _dumps(dict(meta or {}))))
            elif meta:
                merged = _meta(found[1])
                merged.update(meta)
                conn.execute(
                    "UPDATE streams SET length = ?, updated = ?, meta = ? WHERE stream_id = ?",
                    (length + len(records), now, _dumps(merged), stream_id))
            else:  # (most batches: only the length changes)
                conn.execute("UPDATE streams SET length = ?, updated = ? WHERE stream_id = ?",
                             (length + len(records), now, stream_id))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def append(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        await asyncio.to_thread(self.append_sync, stream_id, records, meta)

    # -- reading -----------------------------------------------------------------------------

    def read_sync(self, stream_id: str, from_seq: int = 0, limit: int | None = None
                  ) -> list[Record]:
        check_read(from_seq, limit)
        return self._run(self._read, stream_id, from_seq, limit)  # type: ignore[no-any-return]

    def _read(self, conn: sqlite3.Connection, stream_id: str, from_seq: int,
              limit: int | None) -> list[Record]:
        found = conn.execute("SELECT length FROM streams WHERE stream_id = ?",
                             (stream_id,)).fetchone()
        if found is None:
            raise recording_error(f"no recorded session {stream_id!r} in {self.url}",
                                  stream_id=stream_id)
        length = found[0]
        if from_seq >= length or limit == 0:
            return []
        # a row holds at most ROW_RECORDS records: the index finds the first one at once
        rows = conn.execute(
            "SELECT seq, count, CASE WHEN length(data) > ? THEN NULL ELSE data END, length(data) "
            "FROM events WHERE stream_id = ? AND seq > ? AND seq + count > ? ORDER BY seq",
            (MAX_ROW_BYTES, stream_id, from_seq - ROW_RECORDS, from_seq))
        out: list[Record] = []
        expected = None
        for seq, count, data, size in rows:
            if type(count) is not int or not 0 < count <= ROW_RECORDS:
                raise recording_error(f"stream {stream_id}, records from {seq}: the row's "
                                      f"count {count!r} is damaged", stream_id=stream_id)
            first = from_seq if expected is None else expected
            if seq > first or (expected is not None and seq != expected):
                raise recording_error(f"stream {stream_id}: records {first}..{seq - 1} are "
                                      f"missing", stream_id=stream_id)
            expected = seq + count
            records = _decode(stream_id, seq, count, data, size)
            out.extend(records if seq >= from_seq else records[from_seq - seq:])
            if limit is not None and len(out) >= limit:
                return out[:limit]
        end = from_seq if expected is None else expected
        if end < length:
            raise recording_error(
                f"stream {stream_id}: records {end}..{length - 1} are missing "
                f"(the session says it holds {length})", stream_id=stream_id)
        return out

    async def read(self, stream_id: str, from_seq: int = 0, limit: int | None = None
                   ) -> list[Record]:
        return await asyncio.to_thread(self.read_sync, stream_id, from_seq, limit)

    async def info(self, stream_id: str) -> StreamInfo | None:
        def one(conn: sqlite3.Connection) -> StreamInfo | None:
            row = conn.execute("SELECT * FROM streams WHERE stream_id = ?",
                               (stream_id,)).fetchone()
            return None if row is None else _info(row)

        return await asyncio.to_thread(self._run, one)

    async def list(self, limit: int = 100) -> list[StreamInfo]:
        def some(conn: sqlite3.Connection) -> list[StreamInfo]:
            rows = conn.execute("SELECT * FROM streams ORDER BY updated DESC LIMIT ?", (limit,))
            return [_info(row) for row in rows]

        return await asyncio.to_thread(self._run, some)

    # -- deleting ----------------------------------------------------------------------------

    async def delete(self, stream_id: str) -> bool:
        def gone(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                conn.execute("DELETE FROM events WHERE stream_id = ?", (stream_id,))
                return conn.execute("DELETE FROM streams WHERE stream_id = ?",
                                    (stream_id,)).rowcount > 0

        return await asyncio.to_thread(self._run, gone)

    async def expire(self, older_than: float) -> int:
        cutoff = time.time() - check_age(older_than)

        def old(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                conn.execute("DELETE FROM events WHERE stream_id IN "
                             "(SELECT stream_id FROM streams WHERE updated < ?)", (cutoff,))
                return int(conn.execute("DELETE FROM streams WHERE updated < ?",
                                        (cutoff,)).rowcount)

        return await asyncio.to_thread(self._run, old)

    async def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL mode. Another connection switching at the same moment makes SQLite
    answer "busy" at once, without waiting (no busy handler for this): so wait here."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in (_SQLITE_BUSY, _SQLITE_LOCKED)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise recording_error(f"a record holds a value JSON cannot: {exc}") from exc


def _rows(stream_id: str, records: Sequence[Record]) -> Iterator[tuple[str, int, int, str]]:
    """The rows of a batch: at most ROW_RECORDS records and MAX_ROW_BYTES each (a chunk
    too large is split in halves; one record too large is refused: it could not be read)."""
    for start in range(0, len(records), ROW_RECORDS):
        yield from _row(stream_id, records[start:start + ROW_RECORDS])


def _row(stream_id: str, chunk: Sequence[Record]) -> Iterator[tuple[str, int, int, str]]:
    data = _dumps([r[1:] for r in chunk])
    if len(data) <= MAX_ROW_BYTES:  # (characters, as SQLite's length() of a text)
        yield (stream_id, chunk[0].seq, len(chunk), data)
    elif len(chunk) == 1:
        raise recording_error(
            f"stream {stream_id}: record {chunk[0].seq} ({chunk[0].type}) takes {len(data)} "
            f"bytes, more than the {MAX_ROW_BYTES} a row may hold; the recording stops "
            f"before it", stream_id=stream_id, seq=chunk[0].seq)
    else:
        half = len(chunk) // 2
        yield from _row(stream_id, chunk[:half])
        yield from _row(stream_id, chunk[half:])


def _decode(stream_id: str, seq: int, count: int, data: str | None, size: int
            ) -> list[Record]:
    where = f"stream {stream_id}, records from {seq}"
    if data is None:
        raise recording_error(f"{where}: a row of {size} bytes is larger than the "
                              f"{MAX_ROW_BYTES} this store reads", stream_id=stream_id, seq=seq)
    try:
        items = orjson.loads(data)
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise recording_error(f"{where}: the row is not valid JSON ({exc})",
                              stream_id=stream_id, seq=seq) from None
    if not isinstance(items, list) or len(items) != count:
        raise recording_error(f"{where}: the row does not hold {count} records",
                              stream_id=stream_id, seq=seq)
    try:
        out = [_new(Record, (i, float(ts), kind, data))
               for i, (ts, kind, data) in enumerate(items, seq)]
    except (TypeError, ValueError):  # not three fields, or a time that is not a number
        out = []
    if len(out) != count or not all(type(r[2]) is str for r in out):
        raise recording_error(f"{where}: a record is malformed", stream_id=stream_id, seq=seq)
    return out


def _meta(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _info(row: tuple[Any, ...]) -> StreamInfo:
    stream_id, length, created, updated, meta = row
    return StreamInfo(stream_id, length, created, updated, _meta(meta))

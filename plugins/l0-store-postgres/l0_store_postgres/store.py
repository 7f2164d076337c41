"""The PostgreSQL store: recorded sessions in tables, shared by many workers.

URLs are libpq's (``postgresql://user:password@host:5432/db``,
``postgresql://user@/db?host=/run/postgresql`` for a Unix socket) plus one
options of ours in the query: ``lease=`` (seconds after its last heartbeat that
a worker counts as dead, default :data:`LEASE`) and ``worker=`` (this worker's
name in leases, default the host and pid).

Tables (created on first use, under an advisory lock so that workers starting
together do not race):

- ``l0_events(stream_id, seq, count, data)``, primary key ``(stream_id, seq)``
  (the index that reads use): one row per appended batch of at most
  :data:`ROW_RECORDS` records, ``data`` a JSON array of ``[ts, type, data]``;
- ``l0_streams(stream_id, length, created, updated, owner, meta)``: one row per
  session, updated in the append's transaction (``meta`` is ``jsonb``, merged
  with ``||``);
- ``l0_workers(owner, expires)``: the workers' leases, on the server's clock;
- ``l0_counters(key, count, until)``: failure counters and cooldowns.

An append is one transaction: it locks the session's row (``FOR UPDATE``),
checks that the batch starts at its length and that this worker owns it,
inserts the rows, updates the session, and sends ``NOTIFY l0_events`` with the
session id, delivered at commit. The live tail is ``LISTEN l0_events`` on one
connection per event loop, which wakes the waiting readers of that session (and
a reader re-reads at least every second, should a notification be lost).

The recorder's writer thread writes through a synchronous connection
(``append_sync``); everything else uses asyncio connections, one per event loop.
A committed batch is as durable as the server's ``synchronous_commit`` makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from l0_core.record.store import Record, StreamInfo, check_batch, recording_error
from l0_core.scale.shared import (
    Heartbeat,
    check_owner,
    client_url,
    decode_batch,
    encode_batch,
    url_float,
    worker_id,
)

__all__ = ["LEASE", "ROW_RECORDS", "PostgresStore"]

LEASE = 10.0  # seconds
ROW_RECORDS = 512  # records per row at most
CHANNEL = "l0_events"
_NOW = "extract(epoch from clock_timestamp())"
_RECHECK = 1.0  # seconds: a waiting reader looks again at least this often

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS l0_streams (stream_id text PRIMARY KEY, length bigint NOT NULL, "
    "created double precision NOT NULL, updated double precision NOT NULL, owner text, "
    "meta jsonb NOT NULL DEFAULT '{}')",
    "CREATE INDEX IF NOT EXISTS l0_streams_updated ON l0_streams (updated)",
    "CREATE TABLE IF NOT EXISTS l0_events (stream_id text NOT NULL, seq bigint NOT NULL, "
    "count integer NOT NULL, data text NOT NULL, PRIMARY KEY (stream_id, seq))",
    "CREATE TABLE IF NOT EXISTS l0_workers (owner text PRIMARY KEY, "
    "expires double precision NOT NULL)",
    "CREATE TABLE IF NOT EXISTS l0_counters (key text PRIMARY KEY, count integer NOT NULL, "
    "until double precision NOT NULL)",
)
_SCHEMA_LOCK = 0x4C30_5053  # the advisory lock taken while creating the tables

_FAILURE = (
    f"INSERT INTO l0_counters AS c (key, count, until) VALUES (%(k)s, 1, {_NOW} + %(w)s) "
    f"ON CONFLICT (key) DO UPDATE SET "
    f"count = CASE WHEN c.until > {_NOW} THEN c.count + 1 ELSE 1 END, "
    f"until = CASE WHEN c.until > {_NOW} THEN c.until ELSE {_NOW} + %(w)s END RETURNING count"
)
_CLAIM = (
    f"UPDATE l0_streams SET owner = %(me)s WHERE stream_id = %(id)s "
    f"AND owner IS NOT DISTINCT FROM %(old)s AND meta->>'outcome' = 'running' "
    f"AND NOT EXISTS (SELECT 1 FROM l0_workers w WHERE w.owner = %(old)s "
    f"AND w.expires > {_NOW}) RETURNING stream_id"
)
_BEAT = (
    f"INSERT INTO l0_workers (owner, expires) VALUES (%s, {_NOW} + %s) "
    f"ON CONFLICT (owner) DO UPDATE SET expires = excluded.expires"
)


def _conninfo(url: str) -> str:
    """The URL without our own query options (libpq refuses unknown ones)."""
    return client_url(url)


class _Loop:
    """What one event loop uses: a connection for queries, one that listens."""

    def __init__(self) -> None:
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.listener: psycopg.AsyncConnection[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self.lock = asyncio.Lock()


class PostgresStore:
    """Recorded sessions in PostgreSQL. See the module documentation."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.lease = url_float(url, "lease", LEASE)
        self.owner = worker_id(url)
        self._conninfo = _conninfo(url)
        self._sync: psycopg.Connection[Any] | None = None
        self._sync_lock = threading.Lock()
        self._beat_conn: psycopg.Connection[Any] | None = None
        self._beat_lock = threading.Lock()
        self._loops: dict[asyncio.AbstractEventLoop, _Loop] = {}
        self._heartbeat = Heartbeat(self._beat, self.lease / 3, f"l0-lease {self.owner}")
        self._closed = False

    def _error(self, exc: Exception) -> Exception:
        return recording_error(f"store {self.url}: {exc}", url=self.url)

    # -- connections -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _sync_conn(self) -> Iterator[psycopg.Connection[Any]]:
        with self._sync_lock:
            try:
                if self._sync is None or self._sync.closed:
                    self._sync = _connect(self._conninfo)
                yield self._sync
            except psycopg.Error as exc:
                raise self._error(exc) from exc

    def _state(self) -> _Loop:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            for old in [lp for lp in self._loops if lp.is_closed()]:
                del self._loops[old]
            state = self._loops[loop] = _Loop()
        return state

    async def _conn(self) -> psycopg.AsyncConnection[Any]:
        state = self._state()
        if state.conn is None or state.conn.closed:
            async with state.lock:
                if state.conn is None or state.conn.closed:
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                        for ddl in _SCHEMA:
                            await conn.execute(ddl)
                    state.conn = conn
        return state.conn

    async def _fetch(self, query: str, params: Any) -> list[tuple[Any, ...]]:
        try:
            conn = await self._conn()
            cur = await conn.execute(query, params)
            return await cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    # -- the lease ---------------------------------------------------------------------------

    def _beat(self) -> None:
        """One heartbeat, on a connection of its own: a writer holding the other one
        in a long transaction must not make this worker look dead."""
        with self._beat_lock:
            try:
                if self._beat_conn is None or self._beat_conn.closed:
                    self._beat_conn = _connect(self._conninfo)
                self._beat_conn.execute(_BEAT, (self.owner, self.lease))
            except psycopg.Error as exc:
                raise self._error(exc) from exc

    async def _ensure_lease_async(self) -> None:
        if not self._heartbeat.running:
            await self._fetch(_BEAT, (self.owner, self.lease))
            self._heartbeat.start()

    # -- writing -----------------------------------------------------------------------------

    def append_sync(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        """:meth:`append` in the calling thread (the recorder's writer thread)."""
        first = records[0].seq if records else 0
        check_batch(stream_id, first, records)
        rows = list(_rows(stream_id, records))  # encoded before the transaction starts
        if not self._heartbeat.running:
            self._beat()
            self._heartbeat.start()
        with self._sync_conn() as conn:
            try:
                with conn.transaction():
                    self._append(conn, stream_id, records, rows, meta)
            except psycopg.Error as exc:
                raise self._error(exc) from exc

    def _append(self, conn: psycopg.Connection[Any], stream_id: str,
                records: Sequence[Record], rows: list[tuple[str, int, int, str]],
                meta: Mapping[str, Any] | None) -> None:
        now = time.time()
        first = records[0].seq if records else 0
        if first == 0:
            conn.execute(
                "INSERT INTO l0_streams (stream_id, length, created, updated, owner, meta) "
                "VALUES (%s, 0, %s, %s, %s, '{}') ON CONFLICT (stream_id) DO NOTHING",
                (stream_id, now, now, self.owner))
        found = conn.execute("SELECT length, owner FROM l0_streams WHERE stream_id = %s "
                             "FOR UPDATE", (stream_id,)).fetchone()
        if found is not None:
            check_owner(stream_id, found[1], self.owner)
        check_batch(stream_id, found[0] if found else 0, records)
        assert found is not None  # a batch from seq 0 created it
        if rows:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO l0_events VALUES (%s, %s, %s, %s)", rows)
        conn.execute("UPDATE l0_streams SET length = length + %s, updated = %s, "
                     "meta = meta || %s WHERE stream_id = %s",
                     (len(records), now, Jsonb(dict(meta or {}), dumps=_dumps), stream_id))
        if records:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, stream_id))

    async def append(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        await self._ensure_lease_async()
        await asyncio.to_thread(self.append_sync, stream_id, records, meta)

    # -- reading -----------------------------------------------------------------------------

    async def read(self, stream_id: str, from_seq: int = 0, limit: int | None = None
                   ) -> list[Record]:
        from_seq = max(from_seq, 0)
        if not await self._fetch("SELECT 1 FROM l0_streams WHERE stream_id = %s", (stream_id,)):
            raise recording_error(f"no recorded session {stream_id!r} in {self.url}",
                                  stream_id=stream_id)
        query = ("SELECT seq, count, data FROM l0_events WHERE stream_id = %s AND seq > %s "
                 "AND seq + count > %s ORDER BY seq")
        params: tuple[Any, ...] = (stream_id, from_seq - ROW_RECORDS, from_seq)
        if limit is not None:
            query += " LIMIT %s"
            params += (limit + 1,)
        out: list[Record] = []
        expected: int | None = None
        for seq, count, data in await self._fetch(query, params):
            if expected is not None and seq != expected:
                raise recording_error(f"stream {stream_id}: records {expected}..{seq - 1} "
                                      f"are missing", stream_id=stream_id)
            expected = seq + count
            out.extend(r for r in decode_batch(stream_id, seq, count, data) if r.seq >= from_seq)
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out

    async def info(self, stream_id: str) -> StreamInfo | None:
        rows = await self._fetch("SELECT stream_id, length, created, updated, meta "
                                 "FROM l0_streams WHERE stream_id = %s", (stream_id,))
        return _info(rows[0]) if rows else None

    async def list(self, limit: int = 100) -> list[StreamInfo]:
        rows = await self._fetch("SELECT stream_id, length, created, updated, meta FROM "
                                 "l0_streams ORDER BY updated DESC LIMIT %s", (max(limit, 0),))
        return [_info(row) for row in rows]

    # -- the live tail -----------------------------------------------------------------------

    async def _listen(self, state: _Loop) -> None:
        if state.task is not None and not state.task.done():
            return
        async with state.lock:
            if state.task is not None and not state.task.done():
                return
            try:
                listener = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                await listener.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error as exc:
                raise self._error(exc) from exc
            state.listener = listener
            state.task = asyncio.get_running_loop().create_task(self._notifications(state))

    @staticmethod
    async def _notifications(state: _Loop) -> None:
        assert state.listener is not None
        with contextlib.suppress(psycopg.Error):
            async for note in state.listener.notifies():
                for event in state.waiters.get(note.payload, ()):
                    event.set()

    async def wait(self, stream_id: str, length: int, seconds: float) -> None:
        state = self._state()
        await self._listen(state)
        event = asyncio.Event()
        state.waiters.setdefault(stream_id, set()).add(event)
        try:
            deadline = time.monotonic() + seconds
            while True:
                info = await self.info(stream_id)
                left = deadline - time.monotonic()
                if (info is not None and info.length > length) or left <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left, _RECHECK))
                event.clear()
        finally:
            waiters = state.waiters.get(stream_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del state.waiters[stream_id]

    # -- deleting ----------------------------------------------------------------------------

    async def delete(self, stream_id: str) -> bool:
        try:
            conn = await self._conn()
            async with conn.transaction():
                await conn.execute("DELETE FROM l0_events WHERE stream_id = %s", (stream_id,))
                cur = await conn.execute("DELETE FROM l0_streams WHERE stream_id = %s",
                                         (stream_id,))
                return cur.rowcount > 0
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def expire(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        try:
            conn = await self._conn()
            async with conn.transaction():
                await conn.execute("DELETE FROM l0_events WHERE stream_id IN (SELECT stream_id "
                                   "FROM l0_streams WHERE updated < %s)", (cutoff,))
                cur = await conn.execute("DELETE FROM l0_streams WHERE updated < %s", (cutoff,))
                return cur.rowcount
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    # -- workers -----------------------------------------------------------------------------

    async def holder(self, stream_id: str) -> tuple[str | None, bool]:
        rows = await self._fetch(
            f"SELECT s.owner, EXISTS (SELECT 1 FROM l0_workers w WHERE w.owner = s.owner "
            f"AND w.expires > {_NOW}) FROM l0_streams s WHERE s.stream_id = %s", (stream_id,))
        return (rows[0][0], bool(rows[0][1])) if rows else (None, False)

    async def claim(self, stream_id: str) -> bool:
        await self._ensure_lease_async()
        rows = await self._fetch("SELECT owner FROM l0_streams WHERE stream_id = %s",
                                 (stream_id,))
        if not rows or rows[0][0] == self.owner:
            return False
        got = await self._fetch(_CLAIM, {"me": self.owner, "id": stream_id, "old": rows[0][0]})
        return bool(got)

    async def count_failure(self, key: str, window: float) -> int:
        rows = await self._fetch(_FAILURE, {"k": f"f:{key}", "w": window})
        return int(rows[0][0])

    async def cool(self, key: str, seconds: float) -> None:
        try:
            conn = await self._conn()
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO l0_counters (key, count, until) VALUES (%s, 0, {_NOW} + %s) "
                    f"ON CONFLICT (key) DO UPDATE SET until = excluded.until",
                    (f"c:{key}", seconds))
                await conn.execute("DELETE FROM l0_counters WHERE key = %s", (f"f:{key}",))
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    async def cooling(self, keys: Sequence[str]) -> dict[str, float]:
        if not keys:
            return {}
        rows = await self._fetch(f"SELECT key, until - {_NOW} FROM l0_counters "
                                 f"WHERE key = ANY(%s) AND until > {_NOW}",
                                 ([f"c:{k}" for k in keys],))
        return {key[2:]: float(left) for key, left in rows}

    # -- the end -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the heartbeat and give up this worker's lease (its running sessions can
        be resumed at once), then close the connections of this event loop."""
        if self._closed:
            return
        self._closed = True
        running = self._heartbeat.running
        self._heartbeat.stop()
        if running:
            with contextlib.suppress(psycopg.Error, Exception):
                await self._fetch("DELETE FROM l0_workers WHERE owner = %s", (self.owner,))
        loops, self._loops = self._loops, {}
        here = asyncio.get_running_loop()
        for loop, state in loops.items():
            if loop is not here:
                continue
            if state.task is not None:
                state.task.cancel()
                with contextlib.suppress(BaseException):
                    await state.task
            for conn in (state.listener, state.conn):
                if conn is not None:
                    await conn.close()
        with self._sync_lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None
        with self._beat_lock:
            if self._beat_conn is not None:
                self._beat_conn.close()
                self._beat_conn = None

    def kill(self) -> None:
        """Stop the heartbeat *without* giving up the lease, as a killed worker would
        (tests and demos: its sessions become claimable once the lease expires)."""
        self._heartbeat.stop()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    """A synchronous connection, the tables created first if they are not there."""
    conn = psycopg.Connection.connect(conninfo, autocommit=True)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for ddl in _SCHEMA:
                conn.execute(ddl)
    except BaseException:
        conn.close()
        raise
    return conn


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise recording_error(f"a metadata value JSON cannot hold: {exc}") from exc


def _rows(stream_id: str, records: Sequence[Record]) -> Iterator[tuple[str, int, int, str]]:
    for start in range(0, len(records), ROW_RECORDS):
        chunk = records[start:start + ROW_RECORDS]
        yield stream_id, chunk[0].seq, len(chunk), encode_batch(chunk)


def _info(row: tuple[Any, ...]) -> StreamInfo:
    stream_id, length, created, updated, meta = row
    return StreamInfo(stream_id, int(length), float(created), float(updated),
                      dict(meta) if isinstance(meta, dict) else {})

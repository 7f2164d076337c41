"""The Redis store: recorded sessions in Redis Streams, shared by many workers.

URLs are the redis client's (``redis://[:password@]host:6379/0``, ``rediss://``
for TLS, ``unix:///run/redis.sock?db=0``) plus two options of ours in the
query: ``lease=`` (seconds after its last heartbeat that a worker counts as
dead, default :data:`LEASE`), ``prefix=`` (of every key, default ``l0``) and
``worker=`` (this worker's name in leases, default the host and pid).

Layout, per session ``ID``:

- ``{prefix}:e:ID``, a Redis Stream: one entry per appended batch, its entry id
  ``FIRST-COUNT`` (the batch's first seq and its number of records, so that the
  entry holding any seq is found with one ``XREVRANGE``), field ``d`` the batch
  as a JSON array of ``[ts, type, data]``;
- ``{prefix}:m:ID``, a hash: ``length``, ``created``, ``updated``, ``owner``
  and the metadata (``m:KEY`` = a JSON value);
- ``{prefix}:index``, a sorted set of session ids by last update (``list``,
  ``expire``).

An append is one Lua script, so it is atomic: it checks that the batch starts
at the stream's length and that this worker owns the stream, adds the entry and
updates the hash and the index. The live tail is ``XREAD BLOCK`` on the stream.
A worker's lease is the key ``{prefix}:w:OWNER`` with a ``PX`` expiry, renewed
by a heartbeat thread; failure counters and cooldowns are keys with expiries
too (``{prefix}:f:KEY``, ``{prefix}:c:KEY``).

The recorder's writer thread writes through the synchronous client
(``append_sync``); everything else uses the asyncio client, one per event loop.
Redis persistence (AOF / RDB) decides what survives a Redis restart: with
``appendfsync everysec`` at most a second of batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio as aredis

from l0_core.record.store import Record, StreamInfo, check_batch, recording_error
from l0_core.scale.shared import (
    Heartbeat,
    check_owner,
    client_url,
    decode_batch,
    encode_batch,
    url_float,
    url_option,
    worker_id,
)

__all__ = ["LEASE", "RedisStore"]

LEASE = 10.0  # seconds
POOL = 32  # connections per event loop at most (more commands wait for one)
TAIL_BLOCK = 100  # milliseconds: the longest XREAD BLOCK of the tail of one event loop
_MAX = 18446744073709551615  # the largest sequence part of a stream entry id
_PAGE = 64  # entries read at a time

_APPEND = """
local len = tonumber(redis.call('HGET', KEYS[1], 'length') or '-1')
local fresh = len == -1
if fresh then len = 0 end
local first = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[5] then return {-2, owner} end
if count > 0 and first ~= len then return {-1, tostring(len)} end
if count > 0 then redis.call('XADD', KEYS[2], ARGV[1] .. '-' .. ARGV[2], 'd', ARGV[3]) end
if fresh then redis.call('HSET', KEYS[1], 'created', ARGV[4], 'owner', ARGV[5]) end
redis.call('HSET', KEYS[1], 'length', len + count, 'updated', ARGV[4])
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
return {0, tostring(len + count)}
"""

_CLAIM = """
local outcome = redis.call('HGET', KEYS[1], 'm:outcome')
if outcome ~= '"running"' then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then return 0 end
if owner and redis.call('EXISTS', ARGV[2] .. owner) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return 1
"""

_FAILURE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""




class RedisStore:
    """Recorded sessions in Redis. See the module documentation."""

    name = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        self.lease = url_float(url, "lease", LEASE)
        self.owner = worker_id(url)
        self._p = url_option(url, "prefix") or "l0"
        self._client_url = client_url(url)
        try:
            self._sync = redis.Redis.from_url(self._client_url)
        except ValueError as exc:
            raise recording_error(f"{url}: not a Redis URL ({exc})", url=url) from exc
        self._sync_append = self._sync.register_script(_APPEND)
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._tails: dict[asyncio.AbstractEventLoop, _Tail] = {}
        self._lock = threading.Lock()
        self._heartbeat = Heartbeat(self._beat, self.lease / 3, f"l0-lease {self.owner}")
        self._closed = False

    # -- keys and clients ----------------------------------------------------------------------

    def _m(self, stream_id: str) -> str:
        return f"{self._p}:m:{stream_id}"

    def _e(self, stream_id: str) -> str:
        return f"{self._p}:e:{stream_id}"

    def _w(self, owner: str) -> str:
        return f"{self._p}:w:{owner}"

    def _client(self) -> Any:
        """The asyncio client of the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            with self._lock:
                for old in [lp for lp in self._clients if lp.is_closed()]:
                    del self._clients[old]
                pool = aredis.BlockingConnectionPool.from_url(
                    self._client_url, max_connections=POOL, timeout=None)
                client = self._clients[loop] = aredis.Redis(connection_pool=pool)
        return client

    def _error(self, exc: Exception) -> Exception:
        return recording_error(f"store {self.url}: {exc}", url=self.url)

    # -- the lease ---------------------------------------------------------------------------

    def _beat(self) -> None:
        self._sync.set(self._w(self.owner), b"1", px=int(self.lease * 1000))

    def _ensure_lease(self) -> None:
        """From the writer thread: the first append of this worker starts its heartbeat."""
        if not self._heartbeat.running:
            self._beat()
            self._heartbeat.start()

    async def _ensure_lease_async(self) -> None:
        if not self._heartbeat.running:
            await self._client().set(self._w(self.owner), b"1", px=int(self.lease * 1000))
            self._heartbeat.start()

    # -- writing -----------------------------------------------------------------------------

    def append_sync(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        """:meth:`append` in the calling thread (the recorder's writer thread)."""
        first = records[0].seq if records else 0
        check_batch(stream_id, first, records)
        args = self._append_args(stream_id, records, meta)
        try:
            self._ensure_lease()
            result = self._sync_append(keys=self._append_keys(stream_id), args=args)
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        self._check(stream_id, records, result)

    async def append(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        first = records[0].seq if records else 0
        check_batch(stream_id, first, records)
        args = self._append_args(stream_id, records, meta)
        try:
            await self._ensure_lease_async()
            client = self._client()
            result = await client.eval(_APPEND, 3, *self._append_keys(stream_id), *args)
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        self._check(stream_id, records, result)

    def _append_keys(self, stream_id: str) -> list[str]:
        return [self._m(stream_id), self._e(stream_id), f"{self._p}:index"]

    def _append_args(self, stream_id: str, records: Sequence[Record],
                     meta: Mapping[str, Any] | None) -> list[Any]:
        first = records[0].seq if records else 0
        payload = encode_batch(records) if records else ""
        args: list[Any] = [first, len(records), payload, repr(time.time()), self.owner,
                           stream_id]
        for key, value in (meta or {}).items():
            args += [f"m:{key}", encode_batch_value(value)]
        return args

    def _check(self, stream_id: str, records: Sequence[Record], result: Any) -> None:
        status, detail = int(result[0]), result[1]
        if isinstance(detail, bytes):
            detail = detail.decode()
        if status == -1:
            check_batch(stream_id, int(detail), records)  # raises: it does not follow
        elif status == -2:
            check_owner(stream_id, str(detail), self.owner)

    # -- reading -----------------------------------------------------------------------------

    async def read(self, stream_id: str, from_seq: int = 0, limit: int | None = None
                   ) -> list[Record]:
        from_seq = max(from_seq, 0)
        client = self._client()
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hget(self._m(stream_id), "length")
                pipe.xrevrange(self._e(stream_id), max=f"{from_seq}-{_MAX}", min="-", count=1)
                length, before = await pipe.execute()
            if length is None:
                raise recording_error(f"no recorded session {stream_id!r} in {self.url}",
                                      stream_id=stream_id)
            start = before[0][0] if before else b"-"
            return await self._entries(client, stream_id, start, from_seq, limit)
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    async def _entries(self, client: Any, stream_id: str, start: Any, from_seq: int,
                       limit: int | None) -> list[Record]:
        out: list[Record] = []
        expected: int | None = None
        while True:
            page = await client.xrange(self._e(stream_id), min=start, max="+", count=_PAGE)
            for entry_id, fields in page:
                first, count = (int(part) for part in entry_id.split(b"-"))
                if expected is not None and first != expected:
                    raise recording_error(
                        f"stream {stream_id}: records {expected}..{first - 1} are missing",
                        stream_id=stream_id)
                expected = first + count
                batch = decode_batch(stream_id, first, count, fields.get(b"d", b""))
                out.extend(r for r in batch if r.seq >= from_seq)
                if limit is not None and len(out) >= limit:
                    return out[:limit]
            if len(page) < _PAGE:
                return out
            start = b"(" + page[-1][0]

    async def info(self, stream_id: str) -> StreamInfo | None:
        try:
            fields = await self._client().hgetall(self._m(stream_id))
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return _info(stream_id, fields) if fields else None

    async def list(self, limit: int = 100) -> list[StreamInfo]:
        client = self._client()
        try:
            ids = await client.zrevrange(f"{self._p}:index", 0, max(limit, 0) - 1)
            async with client.pipeline(transaction=False) as pipe:
                for sid in ids:
                    pipe.hgetall(self._m(sid.decode()))
                rows = await pipe.execute()
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return [_info(sid.decode(), row) for sid, row in zip(ids, rows, strict=True) if row]

    async def wait(self, stream_id: str, length: int, seconds: float) -> None:
        client = self._client()
        key = self._e(stream_id)
        try:
            async with client.pipeline(transaction=True) as pipe:  # one instant: no race
                pipe.hget(self._m(stream_id), "length")
                pipe.xrevrange(key, count=1)
                now, last = await pipe.execute()
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        if now is not None and int(now) > length:
            return
        await self._tail().wait(key.encode(), last[0][0] if last else b"0-0", seconds)

    def _tail(self) -> _Tail:
        loop = asyncio.get_running_loop()
        tail = self._tails.get(loop)
        if tail is None:
            tail = self._tails[loop] = _Tail(self._client_url)
        return tail

    # -- deleting ----------------------------------------------------------------------------

    async def delete(self, stream_id: str) -> bool:
        client = self._client()
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(self._m(stream_id), self._e(stream_id))
                pipe.zrem(f"{self._p}:index", stream_id)
                deleted, _ = await pipe.execute()
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return bool(deleted)

    async def expire(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        try:
            ids = await self._client().zrangebyscore(f"{self._p}:index", "-inf", f"({cutoff!r}")
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        gone = 0
        for sid in ids:
            gone += await self.delete(sid.decode())
        return gone

    # -- workers -----------------------------------------------------------------------------

    async def holder(self, stream_id: str) -> tuple[str | None, bool]:
        client = self._client()
        try:
            owner = await client.hget(self._m(stream_id), "owner")
            if owner is None:
                return None, False
            return owner.decode(), bool(await client.exists(self._w(owner.decode())))
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    async def claim(self, stream_id: str) -> bool:
        try:
            await self._ensure_lease_async()
            got = await self._client().eval(_CLAIM, 1, self._m(stream_id), self.owner,
                                            f"{self._p}:w:")
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return bool(got)

    async def count_failure(self, key: str, window: float) -> int:
        try:
            return int(await self._client().eval(_FAILURE, 1, f"{self._p}:f:{key}",
                                                  max(1, int(window * 1000))))
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    async def cool(self, key: str, seconds: float) -> None:
        client = self._client()
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(f"{self._p}:c:{key}", b"1", px=max(1, int(seconds * 1000)))
                pipe.delete(f"{self._p}:f:{key}")
                await pipe.execute()
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    async def cooling(self, keys: Sequence[str]) -> dict[str, float]:
        if not keys:
            return {}
        client = self._client()
        try:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.pttl(f"{self._p}:c:{key}")
                ttls = await pipe.execute()
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return {key: ttl / 1000.0 for key, ttl in zip(keys, ttls, strict=True) if ttl > 0}

    # -- the end -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the heartbeat and give up this worker's lease (its running sessions can
        be resumed at once), then close the connections of this event loop."""
        if self._closed:
            return
        self._closed = True
        running = self._heartbeat.running
        self._heartbeat.stop()
        client = self._client()
        try:
            if running:
                await client.delete(self._w(self.owner))
        except redis.RedisError:
            pass
        finally:
            with self._lock:
                clients, self._clients = self._clients, {}
                tails, self._tails = self._tails, {}
            here = asyncio.get_running_loop()
            tail = tails.get(here)
            if tail is not None:
                await tail.close()
            if here in clients:
                await clients[here].aclose()
                await clients[here].connection_pool.disconnect()
            self._sync.close()

    def kill(self) -> None:
        """Stop the heartbeat *without* giving up the lease, as a killed worker would
        (tests and demos: its sessions become claimable once the lease expires)."""
        self._heartbeat.stop()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"


class _Tail:
    """The live tail of one event loop: a single ``XREAD BLOCK`` over every stream
    that someone waits for, on a connection of its own.

    A thousand attached consumers cost one connection and one blocking read,
    not a thousand; a waiter that arrives while the read blocks is included in
    the next one, at most :data:`TAIL_BLOCK` ms later (it has already checked
    that nothing new was there).
    """

    def __init__(self, url: str) -> None:
        self._client = aredis.Redis.from_url(url)
        self._waiting: dict[bytes, dict[asyncio.Future[None], bytes]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def wait(self, key: bytes, after: bytes, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, {})[future] = after
        self._changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await asyncio.wait_for(future, seconds)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiting.get(key)
            if waiters is not None:
                waiters.pop(future, None)
                if not waiters:
                    del self._waiting[key]

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                self._changed.clear()
                await self._changed.wait()
                continue
            streams: dict[Any, Any] = {key: min(waiters.values(), key=_entry_id)
                                       for key, waiters in self._waiting.items()}
            client: Any = self._client
            try:
                found = [key for key, _ in await client.xread(streams, count=1,
                                                               block=TAIL_BLOCK) or ()]
            except redis.RedisError:  # the waiters look for themselves (and see the error)
                found = list(streams)
                await asyncio.sleep(TAIL_BLOCK / 1000)
            for key in found:
                for future in self._waiting.pop(key, {}):
                    if not future.done():
                        future.set_result(None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self._client.aclose()


def _entry_id(value: bytes) -> tuple[int, int]:
    ms, _, seq = value.partition(b"-")
    return int(ms), int(seq or 0)


def encode_batch_value(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise recording_error(f"a metadata value JSON cannot hold: {exc}") from exc


def _info(stream_id: str, fields: Mapping[bytes, bytes]) -> StreamInfo:
    meta: dict[str, Any] = {}
    for key, value in fields.items():
        if key.startswith(b"m:"):
            try:
                meta[key[2:].decode()] = json.loads(value)
            except ValueError:
                continue
    return StreamInfo(stream_id, int(fields.get(b"length", 0)),
                      float(fields.get(b"created", 0)), float(fields.get(b"updated", 0)), meta)

"""What a store shared by many workers adds to the store protocol.

The record store protocol (``l0_core/record/store.py``) is enough for one
process. Workers that share a store need four more things from it, which the
Redis and PostgreSQL stores (``l0-store-redis``, ``l0-store-postgres``)
implement on their engine and the other stores do not:

- **a live tail**: :meth:`SharedStore.wait` returns as soon as a stream grows
  past a length (Redis ``XREAD BLOCK``, PostgreSQL ``LISTEN``/``NOTIFY``);
- **owners and leases**: every stream is owned by the worker that writes it
  (:attr:`SharedStore.owner`, one id per process and store). A worker keeps a
  lease alive (a heartbeat every third of ``lease`` seconds, in a thread); a
  running session whose owner's lease expired is dead, and
  :meth:`SharedStore.claim` hands it to another worker atomically: of many
  workers claiming one session, exactly one gets it, and the store then
  refuses appends from every other owner (a fence: a worker that was only
  partitioned away cannot write into a log someone else continues);
- **shared counters with expiry**: :meth:`SharedStore.count_failure` and
  :meth:`SharedStore.cool` / :meth:`SharedStore.cooling`, what shared cooldowns
  are built of (``cooldown.py``).

A third-party store opts in by implementing these methods; :func:`shared`
tells whether it did. Batches are JSON arrays of ``[ts, type, data]`` (no
pickle), encoded and checked by :func:`encode_batch` / :func:`decode_batch`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import orjson

from l0_core.errors import ConfigError
from l0_core.record.store import Record, Store, recording_error

__all__ = ["MAX_BATCH_BYTES", "POLL", "SharedStore", "decode_batch", "encode_batch",
           "shared", "wait_for_records"]

MAX_BATCH_BYTES = 32 * 1024 * 1024  # a stored batch larger than this is refused when read
POLL = 0.05  # seconds between polls of a store without a live tail


@runtime_checkable
class SharedStore(Store, Protocol):
    """A store that many workers share. Every method is a coroutine function."""

    owner: str
    lease: float

    async def wait(self, stream_id: str, length: int, seconds: float) -> None:
        """Return once the stream holds more than ``length`` records, or after
        ``seconds`` (whichever is first; the caller reads again)."""
        ...

    async def holder(self, stream_id: str) -> tuple[str | None, bool]:
        """The stream's owner and whether its lease is alive (``(None, False)``
        for an unknown stream)."""
        ...

    async def claim(self, stream_id: str) -> bool:
        """Make this worker the owner of a *running* stream whose owner's lease
        expired; ``False`` when it is finished, unknown, or its owner is alive."""
        ...

    async def count_failure(self, key: str, window: float) -> int:
        """Count one failure of ``key``; the failures counted in the current
        window of ``window`` seconds (the window starts at its first failure)."""
        ...

    async def cool(self, key: str, seconds: float) -> None:
        """Mark ``key`` cooling for ``seconds`` (and restart its failure count)."""
        ...

    async def cooling(self, keys: Sequence[str]) -> dict[str, float]:
        """The seconds left of each cooling key among ``keys`` (absent: not cooling)."""
        ...


def shared(store: Any, feature: str) -> SharedStore:
    """``store`` when it coordinates workers, else a ``ConfigError`` naming ``feature``."""
    if isinstance(store, SharedStore):
        return store
    url = getattr(store, "url", repr(store))
    raise ConfigError(
        f"{feature} needs a store that workers share (redis:// from l0-store-redis, "
        f"postgresql:// from l0-store-postgres); {url} is not one")


async def wait_for_records(store: Store, stream_id: str, length: int, seconds: float) -> None:
    """Wait until ``stream_id`` holds more than ``length`` records, or ``seconds``.

    A shared store's live tail when it has one, else polling its ``info``
    every :data:`POLL` seconds (the memory and SQLite stores).
    """
    if isinstance(store, SharedStore):
        await store.wait(stream_id, length, seconds)
        return
    deadline = time.monotonic() + seconds
    while True:
        info = await store.info(stream_id)
        if info is not None and info.length > length:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(POLL, left))


def encode_batch(records: Sequence[Record]) -> str:
    """A batch as one JSON text (``RecordingError`` for a value JSON cannot hold)."""
    try:
        return orjson.dumps([(r.ts, r.type, r.data) for r in records]).decode()
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise recording_error(f"a record holds a value JSON cannot: {exc}") from exc


def decode_batch(stream_id: str, seq: int, count: int, data: str | bytes) -> list[Record]:
    """The ``count`` records from ``seq`` a stored batch holds; a ``RecordingError``
    names the stream and seq of a batch that is too large, not JSON, or malformed."""
    where = f"stream {stream_id}, records from {seq}"
    if len(data) > MAX_BATCH_BYTES:
        raise recording_error(f"{where}: a batch of {len(data)} bytes is larger than the "
                              f"{MAX_BATCH_BYTES} this store reads", stream_id=stream_id, seq=seq)
    try:
        items = orjson.loads(data)
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise recording_error(f"{where}: the batch is not valid JSON ({exc})",
                              stream_id=stream_id, seq=seq) from None
    if not isinstance(items, list) or len(items) != count:
        raise recording_error(f"{where}: the batch does not hold {count} records",
                              stream_id=stream_id, seq=seq)
    out = []
    for i, item in enumerate(items):
        if (not isinstance(item, list) or len(item) != 3 or not isinstance(item[1], str)
                or not isinstance(item[0], (int, float))):
            raise recording_error(f"{where}: record {seq + i} is malformed",
                                  stream_id=stream_id, seq=seq + i)
        out.append(Record(seq + i, float(item[0]), item[1], item[2]))
    return out


def check_owner(stream_id: str, owner: str | None, me: str) -> None:
    """Refuse a write by a worker that does not own the stream (the fence)."""
    if owner is not None and owner != me:
        raise recording_error(
            f"stream {stream_id} is owned by worker {owner}, not by this worker ({me}): "
            f"another worker resumed it", stream_id=stream_id, owner=owner)


def worker_id(url: str) -> str:
    """A worker id unique to this store object: the URL's ``worker=`` name (default:
    the host and pid) and a random part."""
    import os
    import socket
    import uuid

    name = url_option(url, "worker") or f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{uuid.uuid4().hex[:8]}"


OPTIONS = ("lease", "prefix", "worker")
"""The query options of ours in a shared store's URL (removed before the client sees it)."""


def url_option(url: str, key: str) -> str | None:
    """The last value of ``key`` in the URL's query, or ``None``."""
    from urllib.parse import parse_qsl

    query = url.split("?", 1)[1] if "?" in url else ""
    values = [v for k, v in parse_qsl(query) if k == key]
    return values[-1] if values else None


def client_url(url: str) -> str:
    """The URL without our own query options (clients refuse unknown ones)."""
    from urllib.parse import parse_qsl, urlencode

    if "?" not in url:
        return url
    base, query = url.split("?", 1)
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in OPTIONS]
    return f"{base}?{urlencode(kept)}" if kept else base


def url_float(url: str, key: str, default: float) -> float:
    """A number from the URL's query (``?lease=5``), or ``default``."""
    text = url_option(url, key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{url}: {key}={text!r} is not a number") from None
    if not value > 0:
        raise ConfigError(f"{url}: {key} must be positive")
    return value


class Heartbeat:
    """Keeps this worker's lease alive: ``beat()`` every ``period`` seconds from a
    daemon thread, from the first :meth:`start` until :meth:`stop`.

    A process that is killed stops beating, and its lease expires ``lease``
    seconds after the last beat: that is how the other workers learn it died.
    A beat that fails (the store is unreachable) is retried at the next period.
    """

    def __init__(self, beat: Any, period: float, name: str) -> None:
        import threading

        self._beat = beat
        self._period = period
        self._name = name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start beating (idempotent); the caller has made the first beat."""
        import threading

        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        import logging

        while not self._stop.wait(self._period):
            try:
                self._beat()
            except Exception as exc:  # the store is down: the next beat tries again
                logging.getLogger("l0").warning("l0: %s: heartbeat failed: %r", self._name, exc)

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(5.0)

"""The store protocol: where recorded sessions live, opened by URL.

A recorded session is an append-only log of :class:`Record` s, one per event,
numbered ``0, 1, 2, ...`` without gaps (``seq``), under the session's id (its
``stream_id``), plus a small metadata dict per session (:class:`StreamInfo`)
that ``l0 sessions list`` shows without reading the log.

A store is any object with the async methods of :class:`Store`. Stores are
found by URL scheme: ``l0.open_store("sqlite:///.l0/events.db")`` looks the
scheme (``sqlite``) up in the ``stores`` registry, which plugins fill through
the ``l0_register_stores(register)`` hook; the built-in ``memory`` and
``sqlite`` stores register through the same hook. A store factory is a callable
with a ``name`` (the scheme) that takes the URL and returns a store.

What every store guarantees (and a third-party store must too):

- ``append`` is atomic and ordered: a batch is stored whole or not at all, and
  its first ``seq`` must be the stream's current length (a batch that would
  leave a gap or overwrite a record is refused with a ``RecordingError``, so
  two writers can never interleave one log unnoticed);
- ``read`` returns records in ``seq`` order, from any ``seq``;
- records hold JSON values only (no pickle, ever): a store may keep them as
  JSON text and must refuse what JSON cannot hold. ``check_records`` is the
  check every built-in store runs before writing (a ``RecordingError`` for a
  record that is not ``(seq, ts, type, data)`` with an int ``seq``, a finite
  ``ts``, a str ``type``, and ``data`` made of dicts with str keys, lists, str,
  int, finite floats, bools and ``None``); a third-party store should run it too;
- ``read`` and ``expire`` refuse arguments of the wrong type with a
  ``RecordingError`` (``check_read``, ``check_age``);
- a record a store cannot hold (larger than its rows may be) is refused when
  written, never stored to fail when read.

Writers never call a store from the application's event loop: the recorder
hands batches to a writer thread (``recorder.py``). Readers (replay, the CLI)
await the methods from their own loop, so the methods must not block it
(the SQLite store reads in a worker thread).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from l0_core.errors import ConfigError, ErrorCode, L0Error

__all__ = [
    "FORMAT",
    "MemoryStore",
    "Record",
    "Store",
    "StreamInfo",
    "check_age",
    "check_batch",
    "check_read",
    "check_records",
    "open_store",
    "recording_error",
    "store_schemes",
]

FORMAT = 1
"""The version of the record vocabulary (``docs/recording.md``), kept in each session's header."""


class Record(NamedTuple):
    """One recorded event: ``seq`` (from 0, no gaps), ``ts`` (wall-clock ms),
    ``type`` and ``data`` (JSON values).

    ``type`` is ``"session"`` for the header (``seq`` 0: options, context), a
    consumer event type in lower case (``"token"``, ``"discard"``,
    ``"error"``...: what the consumer received), an observability event type in
    upper case (``"SESSION_START"``...: what observers saw), or ``"dropped"``
    (the recorder lost events under overload; see ``docs/recording.md``).
    A ``token``'s data is its text (a string), or ``{"len", "sha256"}`` when the
    session was recorded with ``record_text=False``.
    """

    seq: int
    ts: float
    type: str
    data: Any

    @property
    def is_consumer_event(self) -> bool:
        """Whether the consumer received it (lower-case types but the header and marks)."""
        return self.type.islower() and self.type not in ("session", "dropped")


@dataclass
class StreamInfo:
    """What a store knows about one recorded session without reading its log.

    ``length`` is the number of records (the next ``seq``); ``created`` and
    ``updated`` are wall-clock seconds; ``meta`` is what the recorder keeps up to
    date (``model``, ``outcome``, ``attempts``, ``tokens``, ``duration_ms``...).
    """

    stream_id: str
    length: int
    created: float
    updated: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "length": self.length, "created": self.created,
                "updated": self.updated, **self.meta}


@runtime_checkable
class Store(Protocol):
    """What a store implements. Every method is a coroutine function."""

    url: str

    async def append(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        """Append ``records`` (consecutive ``seq``, the first one equal to the stream's
        length) atomically, and merge ``meta`` into the stream's metadata (a shallow
        update) in the same step. A new stream is created by its first append."""
        ...

    async def read(self, stream_id: str, from_seq: int = 0, limit: int | None = None
                   ) -> list[Record]:
        """Records with ``seq >= from_seq`` in order, at most ``limit`` of them (an
        empty list past the end; ``RecordingError`` for an unknown stream)."""
        ...

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's metadata, or ``None`` when there is no such stream."""
        ...

    async def list(self, limit: int = 100) -> list[StreamInfo]:
        """The most recently updated streams first, at most ``limit``."""
        ...

    async def delete(self, stream_id: str) -> bool:
        """Forget a stream; whether it existed."""
        ...

    async def expire(self, older_than: float) -> int:
        """Delete streams not updated for ``older_than`` seconds; how many."""
        ...

    async def close(self) -> None:
        """Release connections and files (the store is not used afterwards)."""
        ...


def recording_error(message: str, **metadata: Any) -> L0Error:
    """A typed error about a store or a recording (``RECORDING_ERROR``)."""
    return L0Error(message, ErrorCode.RECORDING_ERROR, metadata=metadata)


def _is_json(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth > 64:
        return False
    if kind is list:
        return all(_is_json(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and _is_json(v, depth + 1) for k, v in value.items())
    return False


def check_records(stream_id: str, records: Sequence[Any]) -> None:
    """Refuse records a store must not hold (see the module documentation)."""
    for record in records:
        if not isinstance(record, tuple) or len(record) != 4:
            raise recording_error(f"stream {stream_id}: {record!r:.200} is not a record "
                                  f"(seq, ts, type, data)", stream_id=stream_id)
        seq, ts, kind, data = record
        if (type(seq) is not int or type(kind) is not str
                or type(ts) not in (int, float) or not math.isfinite(ts)):
            raise recording_error(f"stream {stream_id}: record {record!r:.200} needs an int "
                                  f"seq, a finite ts and a str type", stream_id=stream_id)
        if type(data) is not str and not _is_json(data):
            raise recording_error(f"stream {stream_id}: record {seq} holds a value JSON "
                                  f"cannot: {data!r:.200}", stream_id=stream_id, seq=seq)


def check_read(from_seq: Any, limit: Any) -> None:
    """Refuse a ``read`` argument of the wrong type."""
    if type(from_seq) is not int or from_seq < 0:
        raise recording_error(f"read: from_seq must be an int >= 0, not {from_seq!r}")
    if limit is not None and (type(limit) is not int or limit < 0):
        raise recording_error(f"read: limit must be None or an int >= 0, not {limit!r}")


def check_age(older_than: Any) -> float:
    """``older_than`` of ``expire``, checked."""
    if (isinstance(older_than, bool) or not isinstance(older_than, (int, float))
            or not math.isfinite(older_than) or older_than < 0):
        raise recording_error(f"expire: older_than must be seconds >= 0, not {older_than!r}")
    return float(older_than)


def check_batch(stream_id: str, length: int, records: Sequence[Record]) -> None:
    """Refuse a batch that does not continue the stream exactly (shared by stores)."""
    if not records:
        return
    expected = length
    for record in records:
        if record.seq != expected:
            raise recording_error(
                f"stream {stream_id}: record seq {record.seq} does not follow seq "
                f"{expected - 1} (a gap, a duplicate or a second writer)",
                stream_id=stream_id, expected=expected, got=record.seq,
            )
        expected += 1


# -- the memory store ------------------------------------------------------------------------


class _MemoryStream:
    __slots__ = ("created", "meta", "records", "updated")

    def __init__(self, now: float) -> None:
        self.records: list[Record] = []
        self.meta: dict[str, Any] = {}
        self.created = self.updated = now


class MemoryStore:
    """Records in this process's memory: for tests, and replay within one process.

    ``memory://`` and ``memory://NAME`` each name one store per process
    (``open_store`` returns the same object for the same URL). Thread-safe: the
    recorder's writer thread appends while the application reads.
    """

    name = "memory"

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._streams: dict[str, _MemoryStream] = {}
        self._lock = threading.Lock()

    def append_sync(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        """:meth:`append`, called directly by the writer thread (no event loop needed)."""
        check_records(stream_id, records)
        with self._lock:
            now = time.time()
            stream = self._streams.get(stream_id)
            check_batch(stream_id, len(stream.records) if stream else 0, records)
            if stream is None:
                stream = self._streams[stream_id] = _MemoryStream(now)
            stream.records.extend(records)
            if meta:
                stream.meta.update(meta)
            stream.updated = now

    async def append(
        self, stream_id: str, records: Sequence[Record], meta: Mapping[str, Any] | None = None
    ) -> None:
        self.append_sync(stream_id, records, meta)

    async def read(self, stream_id: str, from_seq: int = 0, limit: int | None = None
                   ) -> list[Record]:
        check_read(from_seq, limit)
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None:
                raise recording_error(f"no recorded session {stream_id!r} in {self.url}",
                                      stream_id=stream_id)
            end = None if limit is None else from_seq + limit
            return stream.records[from_seq:end]

    async def info(self, stream_id: str) -> StreamInfo | None:
        with self._lock:
            stream = self._streams.get(stream_id)
            return None if stream is None else _info(stream_id, stream)

    async def list(self, limit: int = 100) -> list[StreamInfo]:
        with self._lock:
            infos = [_info(sid, s) for sid, s in self._streams.items()]
        infos.sort(key=lambda i: i.updated, reverse=True)
        return infos[:limit]

    async def delete(self, stream_id: str) -> bool:
        with self._lock:
            return self._streams.pop(stream_id, None) is not None

    async def expire(self, older_than: float) -> int:
        cutoff = time.time() - check_age(older_than)
        with self._lock:
            old = [sid for sid, s in self._streams.items() if s.updated < cutoff]
            for sid in old:
                del self._streams[sid]
        return len(old)

    async def close(self) -> None:
        return None


def _info(stream_id: str, stream: _MemoryStream) -> StreamInfo:
    return StreamInfo(stream_id, len(stream.records), stream.created, stream.updated,
                      dict(stream.meta))


# -- opening stores by URL ---------------------------------------------------------------------

_open: dict[str, Any] = {}
_open_lock = threading.Lock()


def store_schemes() -> list[str]:
    """The URL schemes of the installed stores."""
    from l0_core.plugins.host import get_host

    return sorted(get_host().registry("stores").names())


def open_store(url: str) -> Store:
    """The store at ``url`` (``"sqlite:///path/events.db"``, ``"memory://"``...).

    The scheme picks the store among those registered through the
    ``l0_register_stores`` hook; an unknown scheme is a ``ConfigError`` that
    lists the installed ones. One store object is kept per URL in a process, so
    ``l0.run(record=url)`` and ``l0.replay(id, store=url)`` share it (a factory's
    optional ``cache_key(url)`` says which URLs name the same store: a relative
    SQLite path is the file it names in the current directory).
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"store: {url!r} is not a store URL; use a URL such as "
            f"'sqlite:///.l0/events.db' or 'memory://'"
        )
    from l0_core.plugins.host import get_host

    scheme = url.split("://", 1)[0].lower()
    registry = get_host().registry("stores")
    if scheme not in registry:
        raise unknown_scheme(registry, scheme, f"store: {url!r}")
    factory = registry.get(scheme)
    # a factory may say which URLs name the same store (SQLite: relative paths resolved)
    key_of = getattr(factory, "cache_key", None)
    key = key_of(url) if callable(key_of) else url
    with _open_lock:
        store = _open.get(key)
    if store is not None:
        return store  # type: ignore[no-any-return]
    made = factory(url)
    if not isinstance(made, Store):
        raise ConfigError(f"store: the {scheme}:// factory returned {made!r}, not a store")
    with _open_lock:
        return _open.setdefault(key, made)  # type: ignore[no-any-return]


def unknown_scheme(registry: Any, scheme: str, where: str) -> ConfigError:
    """The error for a URL whose scheme no installed store handles."""
    from l0_core.plugins.host import FIRST_PARTY

    package = FIRST_PARTY.get(("stores", scheme))
    hint = f" It is provided by the {package} package: pip install {package}." if package else ""
    installed = ", ".join(f"{s}://" for s in sorted(registry.names())) or "none"
    return ConfigError(f"{where}: no installed store handles {scheme}:// URLs.{hint} "
                       f"Installed stores: {installed}", ErrorCode.UNKNOWN_PLUGIN)


def resolve_store(store: Any) -> Store:
    """A store object, or the store at a URL, or the configured store (``None``)."""
    if store is None:
        from l0_core.plugins.config import defaults_for_run

        url = defaults_for_run(None).store
        if url is None:
            raise ConfigError(
                "no store is configured: pass store='sqlite:///path/events.db' (or a store "
                "object), or set store = \"...\" in l0.toml / [tool.l0] or L0_STORE"
            )
        return open_store(url)
    if isinstance(store, str):
        return open_store(store)
    if isinstance(store, Store):
        return store
    raise ConfigError(f"store: {store!r} is neither a store URL nor a store object")


async def close_stores() -> None:
    """Close every store :func:`open_store` opened (tests, shutdown), after their writer
    threads have written what they were given."""
    from l0_core.record.recorder import close_writer

    with _open_lock:
        stores = list(_open.values())
        _open.clear()
    for store in stores:
        await asyncio.to_thread(close_writer, store)
        await store.close()


def run_sync(coro: Any) -> Any:
    """Run a store coroutine from synchronous code (the CLI, the writer thread)."""
    return asyncio.run(coro)

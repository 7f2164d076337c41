"""``l0.attach``: a recorded session from any process, then its live tail.

A web client that reconnects to another worker, a dashboard, an auditor: each
attaches to the session's log in the shared store, gets what was recorded so
far (from any ``seq``: the client's last one plus one, such as an SSE
``Last-Event-ID``), then every record as it is written, until the session ends
(its ``SESSION_END`` record), however many workers wrote it (a session resumed
after its worker died goes on in the same log).

A record is visible once the recorder flushed its batch (``docs/recording.md``:
every 256 events, at every checkpoint and error, and at most half a second
after an event), so a tail runs that much behind the tokens at worst.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import ObservabilityEventType as T
from l0_core.record.codec import error_from_json
from l0_core.record.store import Record, Store, recording_error, resolve_store
from l0_core.scale.shared import wait_for_records

__all__ = ["Attachment", "attach"]

PAGE = 1024  # records read at a time
_WAIT = 5.0  # seconds: the longest single wait for the tail (then it looks again)
APPEAR = 5.0  # seconds a session that is not recorded yet is waited for


class Attachment:
    """The records of one session: iterate for them, or ``await read()`` for its text.

    Iterating yields :class:`~l0_core.record.Record` s in ``seq`` order: the
    consumer events only (``token``, ``discard``, ``tool_call``, ``error``,
    ``complete``...) by default, every record with ``events="all"``. The
    iteration ends after the session's end. A session not recorded yet (just
    started) is waited for, :data:`APPEAR` seconds or ``idle_timeout``, then a
    ``RecordingError`` says there is none. A recording that ends unfinished
    (events dropped) raises ``RecordingError``; ``idle_timeout`` seconds without a
    new record raise ``TimeoutError`` (an ``L0Error``), so that a client does not
    wait forever for a session nobody resumes.

    ``text`` is the session's text so far, with discards applied (what
    ``stream.state.content`` was); ``next_seq`` is where to attach again.
    """

    def __init__(self, stream_id: str, store: Store, from_seq: int, events: str,
                 idle_timeout: float | None) -> None:
        self.stream_id = stream_id
        self.store = store
        self.next_seq = from_seq
        self.text = ""
        self.error: L0Error | None = None
        self.ended = False
        self._all = events == "all"
        self._idle = idle_timeout

    def __aiter__(self) -> AsyncIterator[Record]:
        return self._records()

    async def read(self) -> str:
        """The session's whole text, once it ended (its error raised if it failed)."""
        async for _ in self:
            pass
        if self.error is not None:
            raise self.error
        return self.text

    async def _records(self) -> AsyncIterator[Record]:
        idle_since = time.monotonic()
        await self._appeared()
        while not self.ended:
            page = await self.store.read(self.stream_id, self.next_seq, PAGE)
            for record in page:
                if record.seq != self.next_seq:
                    raise recording_error(f"stream {self.stream_id}: record {self.next_seq} "
                                          f"is missing", stream_id=self.stream_id)
                self.next_seq += 1
                ended = self._apply(record)
                if self._all or record.is_consumer_event:
                    yield record
                if ended:
                    return
            if page:
                idle_since = time.monotonic()
                if len(page) == PAGE:
                    continue
            await self._wait(idle_since)

    async def _appeared(self) -> None:
        """A session started a moment ago may not be written yet: wait for its first
        batch, ``idle_timeout`` or :data:`APPEAR` seconds at most."""
        deadline = time.monotonic() + (self._idle if self._idle is not None else APPEAR)
        while await self.store.info(self.stream_id) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise recording_error(f"no recorded session {self.stream_id!r} in "
                                      f"{self.store.url}", stream_id=self.stream_id)
            await wait_for_records(self.store, self.stream_id, 0, min(left, _WAIT))

    async def _wait(self, idle_since: float) -> None:
        seconds = _WAIT
        if self._idle is not None:
            left = self._idle - (time.monotonic() - idle_since)
            if left <= 0:
                raise L0Error(
                    f"session {self.stream_id}: no new record for {self._idle:g} s (its worker "
                    f"may have died: l0.resume continues it on another one)",
                    ErrorCode.TIMEOUT, metadata={"stream_id": self.stream_id})
            seconds = min(seconds, left)
        await wait_for_records(self.store, self.stream_id, self.next_seq, seconds)

    def _apply(self, record: Record) -> bool:
        """Follow the text and the end; whether this record ends the session."""
        kind, data = record.type, record.data
        if kind == "token":
            if isinstance(data, str):
                self.text += data
        elif kind == "discard" and isinstance(data, Mapping):
            offset = data.get("offset")
            if isinstance(offset, int):
                self.text = self.text[:offset]
        elif kind == T.SESSION_END.value:
            self.ended = True
            error = data.get("_error") if isinstance(data, Mapping) else None
            if error is not None:
                self.error = error_from_json(error)
        elif kind == "dropped":
            self.ended = True
            count = data.get("count") if isinstance(data, Mapping) else None
            raise recording_error(
                f"stream {self.stream_id}: the recording is incomplete ({count} events were "
                f"dropped while recording)", stream_id=self.stream_id, dropped=count)
        return self.ended

    def __repr__(self) -> str:
        return f"<l0 Attachment {self.stream_id} at seq {self.next_seq}>"


def attach(stream_id: str, *, store: Any = None, from_seq: int = 0, events: str = "consumer",
           idle_timeout: float | None = None) -> Attachment:
    """The records of session ``stream_id`` from ``from_seq`` on, then its live tail.

    ``store`` is a store URL or object (default: the configured store). Any
    store works; Redis and PostgreSQL wake the tail at once (``XREAD BLOCK``,
    ``LISTEN``), the others are polled. See :class:`Attachment`.
    """
    if not isinstance(stream_id, str) or not stream_id:
        raise recording_error(f"attach: {stream_id!r} is not a session id")
    if not isinstance(from_seq, int) or isinstance(from_seq, bool) or from_seq < 0:
        raise recording_error(f"attach: from_seq must be an int >= 0, not {from_seq!r}")
    if events not in ("consumer", "all"):
        raise recording_error(f"attach: events must be 'consumer' or 'all', not {events!r}")
    if idle_timeout is not None and not idle_timeout > 0:
        raise recording_error(f"attach: idle_timeout must be positive, not {idle_timeout!r}")
    return Attachment(stream_id, resolve_store(store), from_seq, events, idle_timeout)

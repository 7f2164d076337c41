"""Recording a live session: ``l0.run(..., record=True | url | store)``.

A :class:`Recorder` does no work per token on the event loop: the session keeps
every delivered token's text in ``state.parts`` anyway, and the recorder
*harvests* the texts added since its last look (``parts[taken:]``, O(delta),
C-level list copies) at the moments that matter — before it records any other
event (so the order is kept), before the session drops text (a discard), at
every check tick, at every flush and at the end. A harvested run of tokens
takes the harvest's time (token timing at tick granularity; replay at
``speed=1`` spreads a run evenly over the time since the record before it);
``record_timing="token"`` keeps each token's own time instead, at one clock
read and one append per token (the session then takes its per-token loop).
Text that entered ``parts`` but was never delivered (an adapter item whose
later event failed, a token a check stopped) is never harvested: the runtime
marks those moments (:meth:`Recorder.hold`, :attr:`Recorder.upto`).

Every other event is converted to JSON-ready values when it happens (there
are few of them) and kept apart with its place among the tokens. What has
gathered is handed to the store's :class:`Writer` thread — a *batch* — when it
holds :data:`BATCH` events (or :data:`RUN` tokens), at every checkpoint, error,
attempt start, fallback and completion, at most :data:`FLUSH_EVERY` seconds
after the previous batch, and at the end of the session. The writer
numbers the records (``seq``, no gaps) and appends each batch to the store in
one transaction, so a crash loses at most the batches not yet written: the log
that remains is always a prefix of the session.

Memory is bounded: the batches waiting for a store's writer hold at most
:data:`MAX_PENDING` events and about :data:`MAX_PENDING_BYTES` of text (the
tokens' text and the size of other events' payloads). When the store is slower
than the streams and a batch would exceed that, the session's recording stops
there: that batch and every later one is dropped (the session itself goes on untouched), and at its
end one ``dropped`` record with the number of events lost closes the log, so
the log is still a prefix, marked as incomplete. A store that fails (a full
disk, a schema mismatch) ends the session's recording the same way; the error
is logged once and kept in ``stream.recording.error``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any

from l0_core.events import Event, ObservabilityEvent, Token
from l0_core.events import ObservabilityEventType as T
from l0_core.record.codec import approx_size, encode_event, encode_obs, jsonable, redact, scrub
from l0_core.record.store import FORMAT, Record, Store

__all__ = ["BATCH", "FLUSH_EVERY", "MAX_PENDING", "MAX_PENDING_BYTES", "RUN", "TIMINGS",
           "Recorder", "Writer",
           "writer_for"]

log = logging.getLogger("l0")

BATCH = 256  # tokens or events per batch, at most
FLUSH_EVERY = 0.5  # seconds: a slow stream's batch is handed over at least this often
MAX_PENDING = 250_000  # events waiting for one store's writer, at most
MAX_PENDING_BYTES = 64 * 1024 * 1024  # and their approximate size (text), at most
RUN = 4096  # tokens harvested into one batch, at most
TIMINGS = ("tick", "token")  # record_timing: a run's harvest time, or each token's own

_mono = time.monotonic
_new = tuple.__new__
_MS = 1000.0
# the observability events after which the batch is handed over at once
_FLUSH_AFTER = frozenset({T.SESSION_START, T.CHECKPOINT_SAVED, T.ERROR, T.ATTEMPT_START,
                          T.FALLBACK_START, T.COMPLETE})


class Recorder:
    """Records one session. ``stream.recording`` is this object.

    :ivar stream_id: the session's id (known once the session starts).
    :ivar store: where it is recorded.
    :ivar dropped: events lost to overload or a failing store (0 normally).
    :ivar error: the store's error, when writing failed.
    """

    __slots__ = ("_base", "_buf", "_bytes", "_done", "_final_sent", "_handle", "_held",
                 "_held_from", "_meta", "_options", "_others", "_parts", "_state", "_submitted",
                 "_taken", "_times", "_waiters", "_written", "attempts", "dropped", "error",
                 "next_seq", "record_text", "store", "stream_id", "timing", "token", "upto",
                 "writer")

    def __init__(self, store: Store, options: Mapping[str, Any], record_text: bool = True,
                 timing: str = "tick") -> None:
        self.store = store
        self.writer = writer_for(store)
        self.record_text = record_text
        self.timing = timing
        self._options = options
        self._buf: list[Any] = []  # tokens: time, text, time, text...
        self._others: list[tuple[Any, ...]] = []  # every other event, with its place in _buf
        self._meta: dict[str, Any] = {}
        self._base = (0.0, 0.0)  # (wall ms, monotonic s) at the session's start
        self.stream_id = ""
        self.next_seq = 0  # owned by the writer thread
        self.attempts = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self._submitted = self._written = 0
        self._bytes = 0  # the approximate size of the events gathered but tokens
        self._final_sent = self._done = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._state: Any = None
        self._parts: list[str] = []  # the session's state.parts (bind)
        self._taken = 0  # parts[:_taken] are harvested
        self._times: list[float] = []  # record_timing="token": each unharvested token's time
        #: while set, ``parts[upto:]`` is not delivered yet (a check tick, the first token)
        self.upto: int | None = None
        self._held: list[tuple[int, bool, tuple[Any, ...]]] | None = None  # see hold()
        self._held_from = 0
        self.token = self._token_sink()

    # -- on the event loop ------------------------------------------------------------------

    def bind(self, state: Any) -> None:
        """The session's state, whose ``parts`` the recorder harvests."""
        self._state = state
        self._parts = state.parts

    def _token_sink(self) -> Callable[[str, Token], None]:
        """``record_timing="token"``: what the session calls per token (its ``notify``),
        one clock read appended to a list (the text is harvested from ``parts``)."""
        append, mono = self._times.append, _mono

        def token(text: str, token: Token) -> None:
            append(mono())

        return token

    def _bound(self) -> int:
        """How many of ``parts`` the consumer has (or is about to have) received."""
        if self._held is not None:
            return self._held_from
        upto = self.upto
        return len(self._parts) if upto is None else upto

    def harvest(self, bound: int | None = None) -> None:
        """Take the texts delivered since the last harvest (``parts[taken:bound]``)
        into the batch: O(delta), one clock read (``RUN`` tokens at most per batch)."""
        taken = self._taken
        if bound is None:
            bound = self._bound()
        if bound <= taken:
            if bound < taken:  # the session dropped text it had delivered (a discard)
                self._taken = bound
                del self._times[:]
            return
        parts, buf, times = self._parts, self._buf, self._times
        now = _mono()
        while taken < bound:
            end = min(bound, taken + RUN)
            n = end - taken
            run: list[Any] = [now] * (2 * n)
            run[1::2] = parts[taken:end]
            if times:  # record_timing="token": each token's own time
                own = times[:n]
                del times[:n]
                run[0:2 * len(own):2] = own
            buf += run
            taken = end
            self._taken = taken
            if len(buf) >= 2 * RUN and taken < bound:
                self._hand_over(False)

    def hold(self) -> None:
        """The runtime starts an item whose events are delivered together, or not at all
        (an adapter's list of events): what is recorded meanwhile waits for :meth:`release`."""
        if self._held is None:
            self._held_from = len(self._parts)
            self._held = []

    def release(self, delivered: bool) -> None:
        """The item of :meth:`hold` ended: its events are recorded in place, or, when it
        failed (its text already dropped from ``parts``), only its observability events,
        after the text that was delivered before it."""
        held, self._held = self._held, None
        if not held:
            return
        if not delivered:
            del self._times[len(self._parts) - self._taken:]
        for mark, consumer, entry in held:
            if not delivered:
                if consumer:
                    continue  # never delivered: not recorded
                mark = min(mark, len(self._parts))
            self.harvest(mark)
            self._others.append((len(self._buf), *entry))

    def _add(self, consumer: bool, entry: tuple[Any, ...]) -> None:
        held = self._held
        if held is not None:
            upto = self.upto
            held.append((len(self._parts) if upto is None else upto, consumer, entry))
            return
        self.harvest()
        self._others.append((len(self._buf), *entry))

    def consumer(self, event: Event) -> None:
        """A consumer event other than a token."""
        kind, data = encode_event(event, self.record_text)
        self._add(True, (_mono(), kind, data))
        self._bytes += approx_size(data)

    def __call__(self, event: ObservabilityEvent) -> None:
        """An observability event (the recorder is one of the session's listeners)."""
        kind = event.type
        if kind is T.SESSION_START:
            self._start(event)
        elif kind is T.STREAM_INIT:
            self.attempts += 1
        data = encode_obs(event, self.record_text)
        if kind is T.SESSION_END and self._state is not None \
                and self._state.finish_reason is not None:
            data["_finishReason"] = self._state.finish_reason  # (replay restores it)
        self._add(False, (event.ts, kind.value, data, None))
        if kind is T.SESSION_END:
            self._end(event)
        elif kind in _FLUSH_AFTER or len(self._others) >= BATCH:
            self.flush()
        elif self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(FLUSH_EVERY, self._timer)

    def _start(self, event: ObservabilityEvent) -> None:
        self.stream_id = event.stream_id
        self._base = (time.time() * 1000.0, _mono())  # one instant on both clocks
        header = {"format": FORMAT, "streamId": event.stream_id, "startedAt": event.ts,
                  "recordText": self.record_text,
                  "context": scrub(jsonable(event.context)) if not self.record_text
                  else jsonable(event.context),
                  **self._options}
        self._others.append((len(self._buf), event.ts, "session", header, None))
        self._meta.update(started=event.ts / 1000.0, model=self._options.get("model"),
                          outcome="running", record_text=self.record_text)
        self._handle = asyncio.get_running_loop().call_later(FLUSH_EVERY, self._timer)

    def _end(self, event: ObservabilityEvent) -> None:
        error = event.meta.get("_error")
        completed = bool(event.meta.get("completed"))
        outcome = "completed" if completed else "failed" if error is not None else "closed"
        code = getattr(error, "code", None)
        if code is not None and code.value == "STREAM_ABORTED":
            outcome = "aborted"
        summary = next((e[3] for e in reversed(self._others) if e[2] == "SESSION_SUMMARY"),
                       None)
        self._meta.update(outcome=outcome, attempts=self.attempts,
                          error=code.value if code is not None else None)
        if isinstance(summary, Mapping):
            self._meta.update(tokens=summary.get("tokenCount"),
                              duration_ms=(summary.get("endTs", 0) - summary.get("startTs", 0)),
                              retries=summary.get("retryCount"),
                              fallback=summary.get("fallbackDepth"))
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.flush(final=True)

    def _timer(self) -> None:
        self._handle = None
        if not self._final_sent:
            self.flush()
            self._handle = asyncio.get_running_loop().call_later(FLUSH_EVERY, self._timer)

    def flush(self, final: bool = False) -> None:
        """Hand the entries gathered so far to the writer thread (never blocks)."""
        if self._final_sent:
            return
        self.harvest()
        self._hand_over(final)

    def _hand_over(self, final: bool) -> None:
        buf, self._buf = self._buf, []
        others, self._others = self._others, []
        meta, self._meta = self._meta, {}
        if final:
            self._final_sent = True
        if not (buf or others or meta or final):
            return
        size = len(buf) // 2 + len(others)
        nbytes, self._bytes = sum(map(len, buf[1::2])) + self._bytes + 64 * len(others), 0
        if self.dropped or self.error is not None or not self.writer.has_room(size, nbytes):
            self.dropped += size
            if not final:
                self._meta = meta  # kept for the last batch
                return
            buf, others = [], [(0, _mono(), "dropped", {
                "count": self.dropped,
                "error": repr(self.error) if self.error is not None else None})]
            size, nbytes = 1, 64
            meta["dropped"] = self.dropped
        self._submitted += 1
        self.writer.submit(self, (buf, others), size, meta, nbytes)

    async def wait(self) -> None:
        """Wait until everything handed over so far is written (or has failed)."""
        if self._written >= self._submitted:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((loop, future))
        if self._written >= self._submitted:  # written meanwhile
            future.set_result(None)
        while not future.done():
            await asyncio.wait([future], timeout=1.0)
            if not future.done() and not self.writer.alive:  # (never expected)
                if self.error is None:
                    from l0_core.record.store import recording_error

                    self.error = recording_error(
                        f"the writer thread of {self.store.url} stopped; "
                        f"{self._submitted - self._written} batch(es) of session "
                        f"{self.stream_id} were not written", stream_id=self.stream_id)
                return

    # -- on the writer thread ---------------------------------------------------------------

    def encode(self, batch: tuple[list[Any], list[tuple[Any, ...]]], seq: int
               ) -> list[Record]:
        """The records of one batch, numbered from ``seq`` (on the writer thread).

        ``batch`` is ``(tokens, others)``: the tokens as a flat list of monotonic
        time and text; every other event as ``(its place in that list, time, type,
        data)``, with a fifth item when the time is already wall-clock ms (the
        observability events and the header). Runs of tokens become records in
        C-level maps: this is the writer's per-token work.
        """
        tokens, others = batch
        wall0, mono0 = self._base
        offset = wall0 - mono0 * 1000.0
        out: list[Record] = []
        pos = 0
        for other in [*others, (len(tokens),)]:
            at = other[0]
            if at > pos:  # the tokens before this event
                texts: Any = tokens[pos + 1:at:2]
                times = map(offset.__add__, map(_MS.__mul__, tokens[pos:at:2]))
                if not self.record_text:
                    texts = map(redact, texts)
                n = (at - pos) // 2
                out.extend(map(_new, repeat(Record),
                               zip(range(seq, seq + n), times, repeat("token"), texts)))
                seq += n
                pos = at
            if len(other) == 1:
                break
            ts = other[1] if len(other) == 5 else offset + other[1] * 1000.0
            out.append(_new(Record, (seq, ts, other[2], other[3])))
            seq += 1
        return out

    def written(self, ok: bool, exc: BaseException | None) -> None:
        if not ok and self.error is None:
            self.error = exc
            log.warning("l0: recording session %s to %s failed: %r; the session goes on "
                        "unrecorded", self.stream_id, self.store.url, exc)
        self._written += 1
        if self._written >= self._submitted:
            waiters, self._waiters = self._waiters, []
            for loop, future in waiters:
                try:
                    loop.call_soon_threadsafe(_resolve, future)
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    pass

    def __repr__(self) -> str:
        return f"<l0 Recorder {self.stream_id} -> {self.store.url}>"


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Writer:
    """The thread that writes one store's batches, in order, off the event loop.

    Batches of one session are written in the order they were handed over;
    batches waiting together are appended per session in one call (one
    transaction). A store with a synchronous ``append_sync`` (memory, SQLite) is
    called directly; another store's ``append`` coroutine runs on this
    thread's own event loop. At interpreter exit the writer finishes what it
    was given (``atexit``), so the last batch of a session that ended just
    before is not lost. A writer idle for :data:`IDLE_EXIT` seconds ends its
    thread and forgets its store (a new batch starts a new thread); closing
    the store (``close_stores``) stops it too.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # entries handed over (counted on the event loop) and written (on this thread)
        self.submitted_entries = self.written_entries = 0
        self.submitted_bytes = self.written_bytes = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # the thread's start and its idle exit
        sync = getattr(store, "append_sync", None)
        self._append: Callable[..., Any] = sync if callable(sync) else self._append_async
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether batches handed over will be written (the thread runs, or will start)."""
        thread = self._thread
        return thread is None or thread.is_alive() or self._queue.empty()

    @property
    def pending(self) -> int:
        """Entries handed over and not written yet."""
        return self.submitted_entries - self.written_entries

    def has_room(self, n: int, nbytes: int = 0) -> bool:
        return (self.pending + n <= MAX_PENDING
                and self.submitted_bytes - self.written_bytes + nbytes <= MAX_PENDING_BYTES)

    def submit(self, recorder: Recorder, batch: tuple[list[Any], list[tuple[Any, ...]]],
               size: int, meta: dict[str, Any], nbytes: int = 0) -> None:
        self.submitted_entries += size
        self.submitted_bytes += nbytes
        with self._lock:
            self._queue.put((recorder, batch, size, meta, nbytes))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"l0-writer {self.store.url}")
                with _writers_lock:
                    _running.add(self)  # (finished at exit even when forgotten meanwhile)
                self._thread.start()

    def _append_async(self, stream_id: str, records: Sequence[Record],
                      meta: Mapping[str, Any]) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.store.append(stream_id, records, meta))

    def _next(self) -> Any:
        """The next item; ``None`` to stop (asked to, or idle: the thread then ends)."""
        try:
            return self._queue.get(timeout=IDLE_EXIT)
        except queue.Empty:
            with self._lock:
                if not self._queue.empty():
                    return self._queue.get()
                self._thread = None  # idle: the next submit starts a new thread
                _forget(self)
                self._close_loop()
                return None

    def _run(self) -> None:
        while True:
            first = self._next()
            if first is None:
                return
            items = [first]
            while True:  # whatever else is waiting, written together
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._guarded_write(items)
                    return
                items.append(item)
            self._guarded_write(items)

    def _guarded_write(self, items: list[tuple[Recorder, Any, int, dict[str, Any], int]]
                       ) -> None:
        try:
            self._write(items)
        except BaseException as exc:  # never let the thread die: later batches would hang
            log.warning("l0: the writer of %s failed: %r", self.store.url, exc)

    def _write(self, items: list[tuple[Recorder, Any, int, dict[str, Any], int]]) -> None:
        by_recorder: dict[int, list[Any]] = {}
        for item in items:
            by_recorder.setdefault(id(item[0]), []).append(item)
        for group in by_recorder.values():
            recorder = group[0][0]
            meta: dict[str, Any] = {}
            ok, exc = True, None
            try:
                if recorder.error is None:
                    records: list[Record] = []
                    for item in group:
                        records.extend(recorder.encode(item[1], recorder.next_seq + len(records)))
                        meta.update(item[3])
                    if records or meta:
                        self._append(recorder.stream_id, records, jsonable(meta))
                    recorder.next_seq += len(records)
            except BaseException as error:  # a store's CancelledError too: the thread goes on
                ok, exc = False, error
            self.written_entries += sum(item[2] for item in group)
            self.written_bytes += sum(item[4] for item in group)
            for _ in group:
                recorder.written(ok, exc)

    def _close_loop(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def close(self, timeout: float = 10.0) -> None:
        """Write what is waiting, then stop the thread."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._queue.put(None)
        thread.join(timeout)
        with self._lock:
            if not thread.is_alive() and self._thread is thread:
                self._thread = None
                self._close_loop()
        with _writers_lock:
            _running.discard(self)


IDLE_EXIT = 30.0  # seconds: a writer thread with nothing to write for this long ends
_writers: dict[int, Writer] = {}
_writers_lock = threading.Lock()


_running: set[Writer] = set()  # the writers whose thread runs


def _forget(writer: Writer) -> None:
    with _writers_lock:
        _running.discard(writer)
        if _writers.get(id(writer.store)) is writer:
            del _writers[id(writer.store)]


def writer_for(store: Store) -> Writer:
    """The writer thread of ``store`` (started on first use)."""
    writer = _writers.get(id(store))
    if writer is None or writer.store is not store:
        with _writers_lock:
            writer = _writers.get(id(store))
            if writer is None or writer.store is not store:
                writer = _writers[id(store)] = Writer(store)
    return writer


def close_writer(store: Store, timeout: float = 10.0) -> None:
    """Finish and stop the writer thread of ``store`` (when the store is closed)."""
    with _writers_lock:
        writer = _writers.get(id(store))
        if writer is None or writer.store is not store:
            return
        del _writers[id(store)]
    writer.close(timeout)


def close_writers(timeout: float = 10.0) -> None:
    """Finish and stop every writer thread (at exit; tests)."""
    with _writers_lock:
        writers = {*_writers.values(), *_running}
        _writers.clear()
        _running.clear()
    for writer in writers:
        writer.close(timeout)


atexit.register(close_writers)


def start_recording(record: Any, record_text: Any, cfg: Any, sources: Sequence[Any], *,
                    retry: Any, timeout: Any, guardrails: Any, drift: Any, continuation: Any,
                    adapter: Any, timing: Any = "tick") -> Recorder:
    """The recorder of one ``l0.run(record=...)`` (``ConfigError`` for a bad value)."""
    from l0_core.errors import ConfigError
    from l0_core.record.store import open_store

    if not isinstance(record_text, bool):
        raise ConfigError(f"record_text must be True or False, not {record_text!r}")
    if timing not in TIMINGS:
        raise ConfigError(f"record_timing must be \"tick\" (a run of tokens takes the time it "
                          f"was recorded) or \"token\" (each token its own), not {timing!r}")
    if record is True:
        url = getattr(cfg, "store", None)
        if url is None:
            raise ConfigError(
                "record=True records to the configured store, and none is configured: set "
                "store = \"sqlite:///.l0/events.db\" in l0.toml ([tool.l0] in pyproject.toml) "
                "or L0_STORE, or pass record=\"sqlite:///path/events.db\"")
        store: Any = open_store(url)
    elif isinstance(record, str):
        store = open_store(record)
    elif isinstance(record, Store):
        store = record
    else:
        raise ConfigError(f"record must be True, a store URL or a store object, not {record!r}")
    options = session_options(sources, retry, timeout, guardrails, drift, continuation, adapter)
    options["timing"] = timing
    return Recorder(store, options, record_text, timing)


def session_options(
    sources: Sequence[Any], retry: Any, timeout: Any, guardrails: Any, drift: Any,
    continuation: Any, adapter: Any,
) -> dict[str, Any]:
    """What the header keeps of a session's options (what replay and ``l0 sessions`` show)."""
    models = []
    for source in sources:
        info = getattr(source, "info", None)
        fn = getattr(source, "fn", None)
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        models.append(jsonable(info) if info else {"factory": name})
    first = models[0] if models else {}
    model = first.get("model") or first.get("factory")
    return {
        "model": model,
        "models": models,
        "retry": jsonable(retry.model_dump()) if hasattr(retry, "model_dump") else None,
        "timeout": jsonable(timeout.model_dump()) if hasattr(timeout, "model_dump") else None,
        "guardrails": _names(guardrails),
        "drift": bool(drift),
        "continuation": continuation is True or bool(getattr(continuation, "enabled", False)),
        "adapter": adapter if isinstance(adapter, str) else getattr(adapter, "name", None),
    }


def _names(items: Any) -> list[str]:
    if not items:
        return []
    if isinstance(items, str):
        return [items]
    out = []
    for item in items:
        name = item if isinstance(item, str) else getattr(item, "name", None)
        out.append(str(name) if name is not None else type(item).__name__)
    return out

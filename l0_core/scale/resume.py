"""``l0.resume``: a session whose worker died, continued on another worker, in the same log.

What happens, in order:

1. **The claim.** The store makes this worker the session's owner, atomically,
   only if the session is still running and its owner's lease expired
   (:meth:`~l0_core.scale.shared.SharedStore.claim`): of many workers resuming one
   session, one wins; the others get a ``RecordingError``. From then on the
   store refuses the old owner's writes (the fence).
2. **The resume point.** The log is read: the text the consumers were given
   (tokens, with discards applied) and the last checkpoint the dead worker
   flushed (``CHECKPOINT_SAVED``) that this text starts with (:func:`_last_kept`).
   With continuation on (the session recorded with
   ``continue_from_last_good_token``, or the option given here) and a factory
   that takes an ``l0.Resume``, the session continues from that checkpoint; the
   text delivered after it is discarded (a ``discard`` record: it passed no
   check yet). Otherwise the session restarts honestly: everything delivered is
   discarded.
3. **The continuation.** A new session runs (``l0.run`` with your options),
   its first attempt given an ``l0.Resume`` whose ``checkpoint`` is the kept
   text and whose ``prompt`` asks the model to continue it; later attempts get
   the kept text plus their own. It records into the *same* log, from the next
   ``seq``: a ``SESSION_RESUMED`` record, then the new session's events, its
   ``complete`` text being the whole text. A consumer attached with
   ``l0.attach`` sees one text.

Overlap removal (a model repeating the end of the checkpoint) applies to the
retries of the resumed session, not to its first attempt: the continuation
prompt asks the model not to repeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from l0_core.events import Complete, Discard, Event, ObservabilityEvent
from l0_core.events import ObservabilityEventType as T
from l0_core.record.codec import encode_event
from l0_core.record.recorder import Recorder
from l0_core.record.store import Record, recording_error, resolve_store
from l0_core.runtime.continuation import Resume
from l0_core.scale.shared import SharedStore, shared

__all__ = ["Orphan", "Resumed", "orphans", "resume"]

RESUMED = "SESSION_RESUMED"
"""The type of the record that marks where a session was resumed (replay skips it)."""


@dataclass
class _Point:
    """Where a dead session stands: its text, what is kept, its header."""

    length: int
    text: str
    kept: str
    kept_tokens: int
    header: dict[str, Any] = field(default_factory=dict)
    record_text: bool = True
    hidden: int = 0  # characters delivered, recorded without their text (record_text=False)


def _read_point(records: Sequence[Record], continuing: bool) -> _Point:
    parts: list[str] = []
    checkpoints: list[tuple[str, int]] = []
    pending: list[int] = []
    header: dict[str, Any] = {}
    hidden = 0
    for record in records:
        kind, data = record.type, record.data
        if kind == "token" and isinstance(data, str):
            parts.append(data)
        elif kind == "token" and isinstance(data, Mapping):
            hidden += int(data.get("len") or 0)
        elif kind == "discard" and isinstance(data, Mapping):
            offset = data.get("offset")
            parts = _cut_tokens(parts, offset if isinstance(offset, int) else 0)
        elif kind == T.CHECKPOINT_SAVED.value and isinstance(data, Mapping):
            saved, count = data.get("checkpoint"), data.get("tokenCount")
            count = count if isinstance(count, int) else 0
            if isinstance(saved, str):
                checkpoints.append((saved, count))
            else:  # recorded as a count only: its text is the first ``count`` tokens
                pending.append(count)
        elif kind == "session" and record.seq == 0 and isinstance(data, Mapping):
            header = dict(data)
    text = "".join(parts)
    # a count past the recorded tokens is a checkpoint whose last token was not flushed
    checkpoints += [("".join(parts[:n]), n) for n in pending if 0 < n <= len(parts)]
    checkpoints.sort(key=lambda point: point[1])
    kept, count = _last_kept(text, checkpoints) if continuing else ("", 0)
    return _Point(len(records), text, kept, count, header,
                  bool(header.get("recordText", True)), hidden)


def _cut_tokens(parts: list[str], offset: int) -> list[str]:
    """The delivered tokens cut at character ``offset`` (a discard), token by token."""
    kept: list[str] = []
    size = 0
    for part in parts:
        if size + len(part) > offset:
            if offset > size:
                kept.append(part[:offset - size])
            break
        kept.append(part)
        size += len(part)
    return kept


def _last_kept(text: str, checkpoints: Sequence[tuple[str, int]]) -> tuple[str, int]:
    """The latest checkpoint that the delivered ``text`` starts with (``("", 0)``: none).

    Not simply the last one: a ``CHECKPOINT_SAVED`` is recorded *before* the token
    that completed it, and the recorder flushes at the checkpoint, so a worker killed
    right after that flush leaves a log whose last checkpoint runs one token past its
    text. The checkpoint before it is then kept (and the text after it discarded),
    rather than nothing at all (a restart from scratch).
    """
    for saved, count in reversed(checkpoints):
        if text.startswith(saved):
            return saved, count
    return "", 0


class Resumed:
    """A resumed session: iterate it or ``await read()`` like an ``l0.run`` stream.

    ``stream`` is the new session's stream (its ``state.content`` is what this
    worker generated); ``kept`` the text kept from the dead worker; ``read()``
    returns the session's whole text, ``kept`` plus the continuation.
    ``from_seq`` is the first ``seq`` this worker wrote.
    """

    def __init__(self, stream_id: str, stream: Any, kept: str, from_seq: int,
                 discarded: str) -> None:
        self.stream_id = stream_id
        self.stream = stream
        self.kept = kept
        self.from_seq = from_seq
        self.discarded = discarded

    def __aiter__(self) -> Any:
        return self.stream.__aiter__()

    async def read(self) -> str:
        return self.kept + str(await self.stream.read())

    def __repr__(self) -> str:
        return f"<l0 Resumed {self.stream_id} from seq {self.from_seq}>"


class Orphan(NamedTuple):
    """A running session whose worker's lease expired: ``l0.resume`` can take it."""

    stream_id: str
    owner: str | None
    context: dict[str, Any]


async def orphans(store: Any = None, limit: int = 1000) -> list[Orphan]:
    """The running sessions among the ``limit`` most recent whose worker is dead,
    with the context each was started with (to rebuild its request from)."""
    st = shared(resolve_store(store), "finding orphaned sessions")
    found = []
    for info in await st.list(limit):
        if info.meta.get("outcome") != "running":
            continue
        owner, alive = await st.holder(info.stream_id)
        if alive:
            continue
        head = await st.read(info.stream_id, 0, 1)
        data = head[0].data if head and head[0].type == "session" else {}
        context = data.get("context") if isinstance(data, Mapping) else None
        found.append(Orphan(info.stream_id, owner, dict(context or {})))
    return found


async def resume(
    stream_id: str,
    *,
    store: Any = None,
    stream: Callable[..., Any],
    fallbacks: Sequence[Callable[..., Any]] = (),
    continue_from_last_good_token: bool | None = None,
    build_continuation_prompt: Callable[[str], str] | None = None,
    **options: Any,
) -> Resumed:
    """Continue session ``stream_id``, whose worker died, on this worker.

    ``store`` is a shared store (URL or object; default: the configured one);
    ``stream`` and ``fallbacks`` are factories as for ``l0.run`` (a factory that
    takes an ``l0.Resume`` continues the text; one that does not restarts it);
    ``continue_from_last_good_token`` defaults to what the session was recorded
    with; every other ``l0.run`` option may be given (``context`` defaults to
    the recorded one). ``RecordingError`` when the session is unknown, finished,
    or alive on its worker (or claimed by another one meanwhile).
    """
    st = shared(resolve_store(store), "l0.resume")
    if not await st.claim(stream_id):
        raise await _why_not(st, stream_id)
    records = await st.read(stream_id)
    recorded = _read_point(records[:1], False).header
    continuing = bool(recorded.get("continuation")) if continue_from_last_good_token is None \
        else continue_from_last_good_token
    from l0_core.runtime.sources import takes_resume

    point = _read_point(records, continuing and takes_resume(stream))
    discarded = point.text[len(point.kept):]
    marker = _marker(st, point, discarded)
    await st.append(stream_id, marker)
    start = point.length + len(marker)
    import l0_core as l0

    options.setdefault("context", recorded.get("context") or None)
    run = l0.run(
        stream=_continuing(stream, point, build_continuation_prompt),
        fallbacks=[_continuing(f, point, build_continuation_prompt) for f in fallbacks],
        continue_from_last_good_token=continuing,
        build_continuation_prompt=build_continuation_prompt,
        record=st, record_text=point.record_text, **options)
    _ResumedRecorder.adopt(run.recording, stream_id, point.kept, start)
    return Resumed(stream_id, run, point.kept, point.length, discarded)


async def _why_not(st: SharedStore, stream_id: str) -> Exception:
    info = await st.info(stream_id)
    if info is None:
        return recording_error(f"no recorded session {stream_id!r} in {st.url}",
                               stream_id=stream_id)
    outcome = info.meta.get("outcome")
    if outcome != "running":
        return recording_error(f"session {stream_id} is not running (its outcome: {outcome}): "
                               f"there is nothing to resume", stream_id=stream_id,
                               outcome=outcome)
    owner, alive = await st.holder(stream_id)
    mine = " (this worker)" if owner == st.owner else ""
    return recording_error(
        f"session {stream_id} is running on worker {owner}{mine}, whose lease is alive: only "
        f"a session whose worker died is resumed", stream_id=stream_id, owner=owner,
        alive=alive)


def _marker(st: SharedStore, point: _Point, discarded: str) -> list[Record]:
    ts = time.time() * 1000.0
    out = []
    if discarded:
        kind, data = encode_event(Discard(discarded, len(point.kept), 0, "WORKER_LOST"),
                                  point.record_text)
        out.append(Record(point.length, ts, kind, data))
    elif point.hidden:  # recorded without text: only the length of what is discarded is known
        out.append(Record(point.length, ts, "discard", {
            "text": {"len": point.hidden}, "offset": 0, "attempt": 0, "reason": "WORKER_LOST"}))
    out.append(Record(point.length + len(out), ts, RESUMED, {
        "worker": st.owner, "keptLength": len(point.kept), "keptTokens": point.kept_tokens,
        "discardedLength": len(discarded) or point.hidden}))
    return out


def _continuing(factory: Callable[..., Any], point: _Point,
                builder: Callable[[str], str] | None) -> Callable[..., Any]:
    """The factory, its every attempt given the kept text plus the attempt's own."""
    from l0_core.runtime.sources import takes_resume

    if not takes_resume(factory):
        return factory
    kept, count = point.kept, point.kept_tokens

    def resumed_factory(resume: Resume | None) -> Any:
        if not kept:
            return factory(resume)
        if resume is None:
            return factory(Resume.build(kept, count, 1, 0, builder))
        return factory(Resume.build(kept + resume.checkpoint, count + resume.token_count,
                                    resume.attempt, resume.fallback_index, builder))

    info = getattr(factory, "l0_source", None)
    if info is not None:
        resumed_factory.l0_source = info  # type: ignore[attr-defined]
    return resumed_factory


# -- recording into the same log ---------------------------------------------------------------

_KEY = "_l0_resumed"  # where a resumed recorder keeps (stream id, kept text, first seq)


class _ResumedRecorder(Recorder):
    """The session's recorder, writing into the resumed log.

    It writes under the resumed session's id from the log's next ``seq``,
    leaves out the new session's header (the log has one), and makes the new
    session's offsets and texts whole: a ``discard``'s offset, the ``complete``
    text and every ``CHECKPOINT_SAVED`` checkpoint count the kept text in.
    It is the recorder ``l0.run`` made, given this class (no new slots), so that
    the runtime's references to it stay valid.
    """

    __slots__ = ()

    @classmethod
    def adopt(cls, recorder: Any, stream_id: str, kept: str, start: int) -> None:
        recorder.__class__ = cls
        recorder._options = {**recorder._options, _KEY: (stream_id, kept)}
        recorder.next_seq = start

    def _resumed(self) -> tuple[str, str]:
        value: tuple[str, str] = self._options[_KEY]
        return value

    def _start(self, event: ObservabilityEvent) -> None:
        super()._start(event)
        self.stream_id = self._resumed()[0]
        for name in ("_others", "_buf"):  # the header the recorder queued: the log has one
            entries = getattr(self, name, None)
            if isinstance(entries, list):
                entries[:] = [e for e in entries if not _is_header(e)]

    def consumer(self, event: Event) -> None:
        kept = self._resumed()[1]
        if kept and isinstance(event, Complete):
            event = Complete(kept + (event.text or ""), event.usage, event.finish_reason)
        elif kept and isinstance(event, Discard):
            event = Discard(event.text, event.offset + len(kept), event.attempt, event.reason)
        super().consumer(event)

    def __call__(self, event: ObservabilityEvent) -> None:
        kept = self._resumed()[1]
        if kept and event.type is T.CHECKPOINT_SAVED:
            meta = dict(event.meta)
            meta["checkpoint"] = kept + str(meta.get("checkpoint", ""))
            event = ObservabilityEvent(event.type, event.ts, event.stream_id, event.context, meta)
        super().__call__(event)


def _is_header(entry: Any) -> bool:
    return isinstance(entry, tuple) and len(entry) >= 4 and "session" in entry[1:3]

"""``l0.replay``: a recorded session played back as a stream, without a network.

The replayed stream yields exactly the consumer events the original consumer
received (same text, same discards, same errors, raised the same way at the
end), fires the lifecycle callbacks and observers again from the recorded
observability events, and rebuilds ``state``. ``speed=0`` plays as fast as it
can be read; ``speed=1`` keeps the original timing (``2`` twice as fast).

``guardrails=[...]`` and ``drift=...`` run *new* checks over the recorded text
of every attempt and report, in ``stream.report``, what they would have done;
they never change what is replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from l0_core.errors import ConfigError, ErrorCode, L0Error
from l0_core.events import Event, ObservabilityEvent, Token
from l0_core.events import ObservabilityEventType as T
from l0_core.guardrails.drift import DriftDetector, create_detector
from l0_core.guardrails.rule import Rule, Violation, create_rules
from l0_core.record.codec import decode_event, error_from_json, violation_from_json
from l0_core.record.store import Record, Store, recording_error, resolve_store
from l0_core.runtime.lifecycle import CALLBACK_NAMES, Callbacks, Isolation
from l0_core.runtime.state import State

__all__ = ["Finding", "Replay", "ReplayReport", "cut_at", "parts_before", "replay"]

PAGE = 2048  # records read from the store at a time
MAX_GAP = 5.0  # seconds: with speed > 0, a longer recorded pause is played this long


@dataclass
class Finding:
    """What a new guardrail or drift check found in one recorded attempt.

    ``action`` is what L0 would have done: ``"retry"`` (a recoverable error),
    ``"halt"`` (fatal), or ``"warn"`` (recorded only); ``at`` is the character
    offset in the session's content where the check found it.
    """

    attempt: int
    fallback_index: int
    rule: str
    message: str
    severity: str
    action: str
    at: int | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReplayReport:
    """What ``guardrails=`` and ``drift=`` would have done on the recorded text."""

    findings: list[Finding] = field(default_factory=list)
    attempts_checked: int = 0

    @property
    def passed(self) -> bool:
        """No check would have stopped an attempt (warnings aside)."""
        return not any(f.action != "warn" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "attemptsChecked": self.attempts_checked,
                "findings": [f.to_dict() for f in self.findings]}


class _Checker:
    """New rules and a drift detector, fresh for every recorded attempt."""

    def __init__(self, guardrails: Any, drift: Any) -> None:
        self.guardrails, self.drift = guardrails, drift
        self.report = ReplayReport()
        self.rules: list[Rule] = []
        self.detector: DriftDetector | None = None
        self.attempt = (1, 0)
        self.text: list[str] = []
        self.open = False

    @property
    def active(self) -> bool:
        return bool(self.guardrails) or bool(self.drift)

    def start(self, attempt: int, fallback_index: int) -> None:
        self.end()
        self.rules = create_rules(self.guardrails)
        self.detector = create_detector(self.drift)
        self.attempt = (attempt, fallback_index)
        self.text = []
        self.open = True
        self.report.attempts_checked += 1

    def token(self, text: str, offset: int) -> None:
        if not self.open:
            return
        self.text.append(text)
        for rule in self.rules:
            if getattr(rule, "streaming", True):
                self._found(rule.check_delta(text, offset), offset)
        if self.detector is not None:
            result = self.detector.check_delta(text, offset)
            if result:
                for kind in result.types:
                    self._add("drift", f"drift detected: {kind}", "error", True, offset)

    def end(self) -> None:
        if not self.open:
            return
        self.open = False
        content = "".join(self.text)
        for rule in self.rules:
            self._found(rule.check_complete(content), None)

    def _found(self, violations: Iterable[Violation] | None, at: int | None) -> None:
        for v in violations or ():
            self._add(v.rule, v.message, v.severity, v.recoverable,
                      v.position if v.position is not None else at)

    def _add(self, rule: str, message: str, severity: str, recoverable: bool,
             at: int | None) -> None:
        halts = severity == "fatal" or (severity == "error" and not recoverable)
        action = "halt" if halts else "retry" if severity == "error" else "warn"
        seen = {(f.attempt, f.fallback_index, f.rule, f.message) for f in self.report.findings}
        if (*self.attempt, rule, message) not in seen:
            self.report.findings.append(Finding(self.attempt[0], self.attempt[1], rule, message,
                                                severity, action, at))


class Replay:
    """What :func:`replay` returns: the consumer API of :class:`l0_core.Stream`."""

    def __init__(self, stream_id: str, store: Store, speed: float,
                 listeners: list[tuple[str, Callable[[ObservabilityEvent], Any]]],
                 callbacks: Callbacks | None, on_event: Any, checker: _Checker,
                 isolation: Isolation) -> None:
        self._id = stream_id
        self._store = store
        self._speed = speed
        self._listeners = listeners
        self._callbacks = callbacks
        self._on_event = on_event
        self._checker = checker
        self._isolation = isolation
        self._state = State()
        self._state.callback_errors = isolation.counts
        self._gen: AsyncIterator[Event] | None = None
        self._finished = False
        self._failure: L0Error | None = None
        self._aborted = False
        self.header: dict[str, Any] = {}
        # headers a resumed session's later writers appended (records past seq 0)
        self.resumed_headers: list[Any] = []
        self._end_record: Record | None = None
        self._dropped: Record | None = None
        self._ahead: tuple[list[Record], list[Record]] = ([], [])
        self._wake: asyncio.Event | None = None
        self._max_gap = MAX_GAP
        self.context: Mapping[str, Any] = {}

    # -- the consumer API ---------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._gen is None:
            self._gen = self._events()
        return self._gen

    @property
    def id(self) -> str:
        return self._id

    @property
    def state(self) -> State:
        return self._state

    @property
    def errors(self) -> list[L0Error]:
        return self._state.errors

    @property
    def report(self) -> ReplayReport:
        """What the ``guardrails=`` / ``drift=`` given to :func:`replay` would have done."""
        return self._checker.report

    async def read(self) -> str:
        if not self._finished:
            async for _ in self:
                pass
        if self._failure is not None:
            raise self._failure
        return self._state.content

    def abort(self, reason: str = "aborted by the caller") -> None:
        self._aborted = True
        if self._wake is not None:
            self._wake.set()  # a pause in progress ends now

    async def _pause(self, seconds: float) -> None:
        """Wait out a recorded gap (at most ``max_gap``; :meth:`abort` ends it)."""
        if self._wake is None:
            self._wake = asyncio.Event()
        if not self._aborted:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(seconds, self._max_gap))

    async def aclose(self) -> None:
        gen = self._gen
        if gen is not None and hasattr(gen, "aclose"):
            await gen.aclose()
        self._finished = True

    async def __aenter__(self) -> Replay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __await__(self) -> Generator[Any, None, Replay]:
        async def itself() -> Replay:
            return self

        return itself().__await__()

    def __repr__(self) -> str:
        return f"<l0 Replay {self._id} {self._state!r}>"

    # -- playing ------------------------------------------------------------------------------

    async def _page(self, seq: int) -> list[Record]:
        page = await self._store.read(self._id, seq, PAGE)
        if page and (page[0].seq != seq or page[-1].seq != seq + len(page) - 1):
            raise recording_error(f"stream {self._id}: records from {seq} are not in "
                                  f"sequence", stream_id=self._id)
        return page

    async def _pages(self) -> AsyncIterator[list[Record]]:
        """The log page by page, the next page read ahead (a checkpoint's text may be
        in the tokens that follow it: :meth:`_checkpoint_text`)."""
        seq = 0
        page = await self._page(seq)
        while True:
            ahead = await self._page(seq + len(page)) if len(page) == PAGE else []
            self._ahead = (page, ahead)
            yield page
            if len(page) < PAGE:
                return
            seq += len(page)
            page = ahead

    def _checkpoint_text(self, record: Record, count: int) -> str:
        """The text of a recorded checkpoint: its first ``count`` tokens (the last ones
        may follow the ``CHECKPOINT_SAVED`` record in the log)."""
        parts = self._state.parts
        need = count - len(parts)
        extra: list[str] = []
        page, ahead = self._ahead
        if need > 0 and page:
            for later in [*page[record.seq - page[0].seq + 1:], *ahead]:
                if later.type == "token" and isinstance(later.data, str):
                    extra.append(later.data)
                    if len(extra) == need:
                        break
        return "".join([*parts[:count], *extra])

    async def _events(self) -> AsyncIterator[Event]:
        last_ts: float | None = None
        st, checker, speed = self._state, self._checker, self._speed
        append, new = st.parts.append, object.__new__
        plain = self._callbacks is None and self._on_event is None and not checker.active
        try:
            async for page in self._pages():
                for i, record in enumerate(page):
                    if self._aborted:
                        raise L0Error("the replay was aborted", ErrorCode.STREAM_ABORTED)
                    if speed > 0:
                        last_ts = await self._wait(page, i, last_ts)
                    data = record.data
                    if plain and record.type == "token" and type(data) is str:
                        append(data)  # the common case: a token nobody else listens to
                        token = new(Token)
                        token.text = data
                        yield token
                    else:
                        event = self._record(record)
                        if event is not None:
                            yield event
            checker.end()
            self._finish(self._end_record, self._dropped)
        except L0Error as failure:
            self._failure = failure
            raise
        finally:
            self._finished = True

    async def _wait(self, page: list[Record], i: int, last_ts: float | None) -> float | None:
        """``speed > 0``: sleep until ``page[i]`` is due. A run of tokens recorded with one
        time (``record_timing="tick"``) is spread evenly over the time since the record
        before it. Returns the time reached."""
        record = page[i]
        ts = record.ts
        if last_ts is None:
            return ts
        if ts <= last_ts:
            return last_ts
        step = ts - last_ts
        if record.type == "token":
            n = 1
            while i + n < len(page) and page[i + n].type == "token" and page[i + n].ts == ts:
                n += 1
            step /= n
        await self._pause(step / 1000.0 / self._speed)
        return last_ts + step if step < ts - last_ts else ts

    def _record(self, record: Record) -> Event | None:
        """Any record but a plain token: the consumer event it holds, if any."""
        kind = record.type
        if record.seq == 0:
            self._header(record)
        elif kind == "session":  # a later header: another writer continued the log
            self.resumed_headers.append(record.data)
        elif kind == "dropped":
            self._dropped = record
        elif kind.isupper():
            self._observe(record)
            if kind == T.SESSION_END.value:
                self._end_record = record
        else:
            return self._consume(record)
        return None

    def _header(self, record: Record) -> None:
        if record.type != "session" or not isinstance(record.data, Mapping):
            raise recording_error(f"stream {self._id} does not start with a session header",
                                  stream_id=self._id)
        self.header = dict(record.data)
        context = self.header.get("context")
        self.context = context if isinstance(context, Mapping) else {}

    def _finish(self, end: Record | None, dropped: Record | None) -> None:
        if dropped is not None:
            count = dropped.data.get("count") if isinstance(dropped.data, Mapping) else None
            raise recording_error(
                f"stream {self._id}: the recording is incomplete ({count} events were dropped "
                f"while recording); everything recorded before was replayed",
                stream_id=self._id, dropped=count)
        if end is None:
            raise recording_error(
                f"stream {self._id}: the recording ends before the session did (the recording "
                f"process stopped, or the session is still running); everything recorded was "
                f"replayed", stream_id=self._id)
        error = end.data.get("_error") if isinstance(end.data, Mapping) else None
        if error is not None:
            raise error_from_json(error)

    def _consume(self, record: Record) -> Event:
        event = decode_event(record.type, record.data)
        st = self._state
        if type(event) is Token:
            assert event.text is not None
            if self._checker.active:
                self._checker.token(event.text, len(st.content))
            st.parts.append(event.text)
            self._notify_token(event, record.ts)
        else:
            _APPLY.get(record.type, _nothing)(st, event)
            if event.is_complete or event.is_error:
                self._checker.end()
            cbs = self._callbacks
            if cbs is not None and cbs.on_stream_event is not None:
                self._isolation.call("on_stream_event", cbs.on_stream_event, event)
        return event

    def _notify_token(self, token: Token, ts: float) -> None:
        cbs, call = self._callbacks, self._isolation.call
        if cbs is not None:
            if cbs.on_token is not None:
                call("on_token", cbs.on_token, token.text)
            if cbs.on_stream_event is not None:
                call("on_stream_event", cbs.on_stream_event, token)
        if self._on_event is not None:
            event = ObservabilityEvent(T.TOKEN, ts, self._id, self.context,
                                       {"text": token.text, "index": len(self._state.parts) - 1})
            call("on_event", self._on_event, event)

    def _observe(self, record: Record) -> None:
        try:
            kind = T(record.type)
        except ValueError:
            return  # an event type of a newer L0: not replayed
        meta = dict(record.data) if isinstance(record.data, Mapping) else {}
        if "_error" in meta:
            meta["_error"] = error_from_json(meta["_error"])
        st = self._state
        _OBSERVE.get(kind, _nothing_obs)(self, st, meta)
        if kind is T.CHECKPOINT_SAVED and "checkpoint" not in meta and self._listeners:
            meta["checkpoint"] = self._checkpoint_text(record, st.checkpoint_parts)
        if kind is T.COMPLETE:
            st.completed = True  # as the live state is when COMPLETE is emitted
            meta["_state"] = st
        event = ObservabilityEvent(kind, record.ts, self._id, self.context, meta)
        for name, listener in self._listeners:
            self._isolation.call(name, listener, event)


def _nothing(st: State, event: Event) -> None:
    return None


def _nothing_obs(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    return None


def parts_before(parts: list[str], offset: int) -> int:
    """How many of ``parts`` a discard at character ``offset`` keeps (whole parts)."""
    chars = 0
    for n, part in enumerate(parts):
        if chars >= offset:
            return n
        chars += len(part)
    return len(parts)


def cut_at(parts: list[str], offset: Any) -> None:
    """Cut ``parts`` where a recorded discard did (``ValueError`` for a bad offset)."""
    if type(offset) is not int:
        raise ValueError(f"a discard's offset is {offset!r}, not a count")
    del parts[parts_before(parts, offset):]


def _discard(st: State, event: Event) -> None:
    st._truncate(parts_before(st.parts, getattr(event, "offset", 0)))


def _data_output(st: State, event: Any) -> None:
    """What the live session kept of a data event: a media event itself unless it is a
    preview (``partial``), any other data its payload."""
    if hasattr(event, "mime_type"):
        if not getattr(event, "partial", False):
            st.data_outputs.append(event)
    else:
        st.data_outputs.append(event.data)


def _complete(st: State, event: Event) -> None:
    st.completed = True
    st.usage = event.usage
    st.finish_reason = getattr(event, "finish_reason", None)


_APPLY: dict[str, Callable[[State, Event], None]] = {
    "discard": _discard,
    "complete": _complete,
    "tool_call": lambda st, ev: st.tool_calls.append(ev),  # type: ignore[arg-type]
    "data": lambda st, ev: _data_output(st, ev),
    "progress": lambda st, ev: setattr(st, "last_progress", ev.data),
}


def _count(rp: Replay, meta: Mapping[str, Any], key: str, default: int = 0) -> int:
    """``meta[key]`` as a count (RecordingError for anything else)."""
    value = meta.get(key, default)
    if type(value) is int and value >= 0:
        return value
    raise recording_error(f"stream {rp.id}: a recorded event's {key} is {value!r}, not a "
                          f"count", stream_id=rp.id)


def _attempt(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    st.attempt = _count(rp, meta, "attempt", 1)
    rp._checker.start(st.attempt, st.fallback_index)


def _fallback(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    st.fallback_index, st.attempt = _count(rp, meta, "toIndex", st.fallback_index + 1), 1
    rp._checker.start(1, st.fallback_index)


def _retry(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    if meta.get("isNetwork"):
        st.network_retry_count += 1
    else:
        st.model_retry_count += 1


def _error(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    if isinstance(meta.get("_error"), L0Error):
        st.errors.append(meta["_error"])


def _checkpoint(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    st.checkpoint_parts = _count(rp, meta, "tokenCount")


def _resume(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    st.resumed = st.continuation_used = True


def _rule_result(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    v = meta.get("violation")
    if not meta.get("passed", True) and isinstance(v, Mapping):
        violation = violation_from_json(v)
        st.violations.append(violation)
        meta["_violation"] = violation


def _drift(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    if meta.get("detected"):
        st.drift_detected = True
        st.drift_types.extend(str(t) for t in meta.get("types") or ())


def _summary(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    start, end = meta.get("startTs"), meta.get("endTs")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)):
        st.duration = (end - start) / 1000.0


def _session_end(rp: Replay, st: State, meta: dict[str, Any]) -> None:
    reason = meta.pop("_finishReason", None)  # the last attempt's, completed or not
    if isinstance(reason, str):
        st.finish_reason = reason
    error = meta.get("_error")
    if isinstance(error, L0Error) and error.code is ErrorCode.STREAM_ABORTED:
        st.aborted = True


_OBSERVE: dict[T, Callable[[Replay, State, dict[str, Any]], None]] = {
    T.SESSION_START: _attempt,
    T.ATTEMPT_START: _attempt,
    T.FALLBACK_START: _fallback,
    T.RETRY_ATTEMPT: _retry,
    T.ERROR: _error,
    T.CHECKPOINT_SAVED: _checkpoint,
    T.RESUME_START: _resume,
    T.GUARDRAIL_RULE_RESULT: _rule_result,
    T.DRIFT_CHECK_RESULT: _drift,
    T.SESSION_SUMMARY: _summary,
    T.SESSION_END: _session_end,
}


def replay(
    stream_id: str,
    *,
    store: Any = None,
    speed: float = 0.0,
    max_gap: float = MAX_GAP,
    guardrails: Iterable[Any] | str | None = None,
    drift: Any = None,
    on_event: Callable[[ObservabilityEvent], Any] | None = None,
    observers: Iterable[Any] | None = None,
    **callbacks: Any,
) -> Replay:
    """Play a recorded session back (``docs/recording.md``); nothing is fetched until
    it is iterated.

    ``store`` is a store URL, a store object, or ``None`` for the configured
    store. ``speed=0`` replays at once, ``speed=1`` at the recorded pace (a pause
    longer than ``max_gap`` seconds is played as ``max_gap``; :meth:`Replay.abort`
    ends a pause at once).
    ``guardrails`` / ``drift``: new checks run over the recorded text, reported in
    ``stream.report``. ``on_event``, ``observers`` and the ``on_*`` callbacks of
    :func:`l0_core.run` are fired again as they were for the original session.
    """
    if not isinstance(stream_id, str) or not stream_id:
        raise ConfigError(f"replay: stream_id must be a session id, not {stream_id!r}")
    if (isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed < 0
            or not math.isfinite(speed)):
        raise ConfigError(f"replay: speed must be a number >= 0 (0: at once), not {speed!r}")
    if (isinstance(max_gap, bool) or not isinstance(max_gap, (int, float)) or max_gap < 0
            or math.isnan(max_gap)):
        raise ConfigError(f"replay: max_gap must be seconds >= 0, not {max_gap!r}")
    unknown = sorted(set(callbacks) - set(CALLBACK_NAMES))
    if unknown:
        raise ConfigError(f"replay: unknown argument(s) {', '.join(unknown)}; callbacks: "
                          f"{', '.join(CALLBACK_NAMES)}")
    for name, fn in [("on_event", on_event), *callbacks.items()]:
        if fn is not None and not callable(fn):
            raise ConfigError(f"replay: {name} must be callable, not {fn!r}")
    resolved = resolve_store(store)
    from l0_core.runtime.stream import _observer_listener

    isolation = Isolation()
    cbs = Callbacks(callbacks, isolation) if callbacks else None
    listeners: list[tuple[str, Callable[[ObservabilityEvent], Any]]] = []
    if on_event is not None:
        listeners.append(("on_event", on_event))
    listeners.extend(_observer_listener(o) for o in observers or ())
    if cbs is not None and cbs.wants_events:
        listeners.append(("callbacks", cbs))
    checker = _Checker(guardrails, drift)
    if checker.active:  # wrong rule names or detectors fail now, not during the replay
        create_rules(guardrails)
        _check_detector(create_detector(drift))
    replayed = Replay(stream_id, resolved, float(speed), listeners, cbs, on_event, checker,
                      isolation)
    replayed._max_gap = float(max_gap)
    return replayed


def _check_detector(detector: Any) -> None:
    if detector is not None and not callable(getattr(detector, "check_delta", None)):
        raise ConfigError(f"replay: drift must be True, a drift detector or its class or "
                          f"factory, not {detector!r}")

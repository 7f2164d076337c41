"""One attempt: its state, built fresh in one place, and the steps of reading it.

The session's generator (``session.py``) holds the two token loops, because a
token must be yielded from the consumer's own generator frame to stay cheap;
everything else an attempt does (open the stream, pick the adapter, handle
the first item and non-text items, take text through deduplication, checks
and callbacks, end the attempt) is here.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import Event, Token
from l0_core.events import ObservabilityEventType as T
from l0_core.runtime.adapters import AdapterSession, TextAdapter
from l0_core.runtime.checks import NO_CHECKS, Checks
from l0_core.runtime.continuation import OverlapRemover, Resume
from l0_core.runtime.sources import FACTORY_BUGS, Source, close_quietly, factory_bug

if TYPE_CHECKING:
    from l0_core.runtime.session import Session

__all__ = ["END", "Attempt"]

END: Any = object()  # the source ended before its first item
_TEXT_SESSION = TextAdapter().open()


class Attempt:
    """Everything that belongs to one attempt and is never carried into the next.

    :ivar index: which source (0: the primary, then the fallbacks).
    :ivar number: the attempt's number on that source, from 1.
    :ivar start: how many parts of ``state.parts`` came before this attempt.
    :ivar plain: no per-token work is configured: the fast loop reads the rest.
    """

    __slots__ = ("adapter", "checks", "data_from", "dedup", "feed", "index", "it", "left",
                 "number", "plain", "resume", "session", "source", "src", "start",
                 "tools_from", "waiting_first")

    def __init__(self, session: Session, index: int, number: int, resume: Resume | None) -> None:
        st = session.state
        self.session = session
        self.index = index
        self.number = number
        self.resume = resume
        self.source: Source = session.sources[index]
        self.start = len(st.parts)
        self.tools_from = len(st.tool_calls)
        self.data_from = len(st.data_outputs)
        self.checks = Checks(session, self.start, resume) if session.checking else NO_CHECKS
        cont = session.continuation
        self.dedup: OverlapRemover | None = None
        if resume is not None and cont is not None and cont.deduplicate:
            self.dedup = OverlapRemover(resume.checkpoint, cont.min_overlap, cont.max_overlap)
        self.plain = not (self.checks.active or self.dedup is not None or session.per_token)
        self.left = session.interval  # tokens until the next check tick
        self.waiting_first = True
        self.src: Any = None
        self.it: Any = None
        self.adapter: AdapterSession | None = None
        self.feed: Any = None  # None: items are str, read inline

    # -- opening -------------------------------------------------------------------------

    async def open(self) -> Any:
        """Call the factory, start the stream and read its first item (or ``END``)."""
        s = self.session
        if s.stop is not None:  # abort() or the total budget came first
            raise s.stop
        st = s.state
        st.attempt, st.fallback_index = self.number, self.index
        if s.listeners:
            if self.source.info is None:
                s.emit(T.STREAM_INIT)
            else:
                s.emit(T.STREAM_INIT, source=self.source.info)
        s.watchdog.arm()
        if s.listeners and s.timeout.initial_token is not None:
            s.emit(T.TIMEOUT_START, timeoutType="initial",
                   configuredMs=s.timeout.initial_token * 1000.0)
        src = self.source.open(self.resume)
        if not hasattr(src, "__aiter__") and inspect.isawaitable(src):
            try:
                src = await src
            except FACTORY_BUGS as exc:
                raise factory_bug(exc) from exc
        self.src = src
        aiter_ = getattr(src, "__aiter__", None)
        if aiter_ is None:
            raise L0Error(
                f"the stream factory returned a {type(src).__name__}, which is not an async "
                f"iterator",
                ErrorCode.INVALID_STREAM,
            )
        self.it = aiter_()
        try:
            first = await self.it.__anext__()
        except StopAsyncIteration:
            first = END
        if st.raw_chunks is not None and first is not END:
            st.raw_chunks.append(first)
        adapter = s.pick_adapter(first, src)
        self.adapter = adapter.open(s.adapter_options)
        self.feed = None if isinstance(adapter, TextAdapter) else self.adapter.feed
        if s.listeners:
            s.emit(T.STREAM_READY)
        return first

    def first_item(self, item: Any) -> Sequence[Event]:
        """The events of the item read by :meth:`open` (its raw copy is already kept)."""
        if item is END:
            return ()
        return self.step(item, item if self.feed is None else self.feed(item))

    # -- per item (the loops inline the common case) -----------------------------------------

    @property
    def fast(self) -> bool:
        """Whether the loops may take text inline: past the first token, nothing held."""
        return not self.waiting_first and (self.dedup is None or self.dedup.done)

    def step(self, item: Any, r: Any) -> Sequence[Event]:
        """The events of one item, ``r`` being what the adapter made of it."""
        if type(r) is str:
            tok = self.text(r)
            return (tok,) if tok is not None else ()
        return self.other(item, r)

    def text(self, r: str) -> Token | None:
        """A piece of text: deduplicated, checked, recorded, announced; ``None`` if held."""
        if not r:
            return None
        s = self.session
        if self.dedup is not None and not self.dedup.done:
            r = self._dedup(r)
            if not r:
                s.items += 1  # held back, but the source is alive
                return None
        s.state.parts.append(r)
        self.left -= 1
        if self.left <= 0:
            self.checks.tick_before()
            self.left = s.interval
        if self.waiting_first:
            self.first_token()
        tok = Token(r)
        if s.notify is not None:
            s.notify(r, tok)
        return tok

    def _dedup(self, r: str) -> str:
        dedup = self.dedup
        assert dedup is not None
        r = dedup.push(r)
        if dedup.removed:
            st = self.session.state
            st.deduplication_applied = True
            st.overlap_removed = dedup.removed
        return r

    def other(self, item: Any, r: Any) -> Sequence[Event]:
        """What an item that is not plain text gave: nothing, an event, or a mix."""
        s = self.session
        s.items += 1
        if self.feed is None:
            _TEXT_SESSION.feed(item)  # raises INVALID_STREAM: a text stream yields only str
        if r is None:
            return ()
        if isinstance(r, Event):
            r = (r,)
        out: list[Event] = []
        st, rec = s.state, s.recorder
        before, tools, data = len(st.parts), len(st.tool_calls), len(st.data_outputs)
        if rec is not None:
            rec.hold()  # this item's events are recorded once it is delivered whole
        try:
            for ev in r:
                if type(ev) is Token:
                    tok = self.text(ev.text or "")
                    if tok is not None:
                        out.append(tok)
                else:
                    out.extend(s.side_event(ev))
        except BaseException:
            st._truncate(before)  # none of this item was delivered
            del st.tool_calls[tools:], st.data_outputs[data:]
            if rec is not None:
                rec.release(False)
            raise
        if rec is not None:
            rec.release(True)
        return out

    def first_token(self) -> None:
        """The first text of the attempt: switch the watchdog to the inter-token timer."""
        self.waiting_first = False
        s = self.session
        st = s.state
        if st.first_token_at is None:
            st.first_token_at = time.monotonic()
        s.watchdog.to_inter()
        if s.listeners:
            inter = s.timeout.inter_token
            rec = s.recorder
            if rec is not None:
                rec.upto = len(st.parts) - 1  # (the token is delivered after this event)
            s.emit(T.TIMEOUT_RESET, timeoutType="inter",
                   configuredMs=None if inter is None else inter * 1000.0,
                   tokenIndex=len(st.parts) - 1)
            if rec is not None:
                rec.upto = None

    # -- the end ------------------------------------------------------------------------------

    def finish(self) -> Sequence[Event]:
        """The source ended: text still held back, then the end-of-attempt checks."""
        tail = self.held_text()
        rec = self.session.recorder
        if rec is not None and tail is not None:
            rec.upto = len(self.session.state.parts) - 1  # the tail is not delivered yet
        try:
            self.end()
        except BaseException:  # the attempt failed after all: the tail is not delivered
            if tail is not None:
                st = self.session.state
                st._truncate(len(st.parts) - 1)
            raise
        finally:
            if rec is not None:
                rec.upto = None
        if tail is None:
            return ()
        notify = self.session.notify
        if notify is not None:  # only now: a tail that is not delivered is not announced
            notify(tail.text or "", tail)
        return (tail,)

    def held_text(self) -> Token | None:
        """Text the deduplication still holds when the source ends, as a last token
        (announced to ``notify`` by :meth:`finish` once the attempt has passed its end)."""
        dedup = self.dedup
        if dedup is None or dedup.done:
            return None
        tail = dedup.flush()
        st = self.session.state
        if dedup.removed:
            st.deduplication_applied = True
            st.overlap_removed = dedup.removed
        if not tail:
            return None
        st.parts.append(tail)
        return Token(tail)

    def end(self) -> None:
        """The source ended: finish reason, final checks, empty and truncated output."""
        s = self.session
        st = s.state
        assert self.adapter is not None
        finish = self.adapter.finish()
        st.finish_reason = finish.finish_reason
        if finish.usage is not None:
            st.usage = finish.usage
        if self.checks.active:
            self.checks.tick(force=True)
        if s.detect_zero and self._empty():
            raise L0Error(
                "the model produced no output" if len(st.parts) == self.start
                else "the model produced only whitespace",
                ErrorCode.ZERO_OUTPUT,
            )
        if self.checks.rules:
            self.checks.complete(other_output=self._other_output())
        reason = finish.finish_reason
        if reason == "length" and s.may_continue_on_length():
            s.emit(T.FINISH_REASON, finishReason="length")
            if self.checks.active:  # everything streamed is kept for the continuation
                self.checks.validated = len(st.parts)
            raise L0Error("the model stopped at its output length limit; continuing",
                          ErrorCode.INCOMPLETE, metadata={"finishReason": "length"})
        if reason not in (None, "stop") and s.listeners:
            s.emit(T.FINISH_REASON, finishReason=reason)

    def _other_output(self) -> bool:
        """Whether the attempt produced media or tool calls (output besides text)."""
        st = self.session.state
        return len(st.tool_calls) > self.tools_from or len(st.data_outputs) > self.data_from

    def _empty(self) -> bool:
        st = self.session.state
        return (
            not self._other_output()
            and not any(p.strip() for p in st.parts[self.start:])
            and not (self.resume is not None and self.resume.checkpoint.strip())
        )

    async def close(self) -> None:
        """Close the upstream iterator and its source (idempotent)."""
        it, src = self.it, self.src
        self.it = self.src = None
        await close_quietly(it, src)

"""Adapters: how L0 reads a provider's stream items.

An adapter recognises the first item of a stream (``detect``) and opens a
per-attempt session whose ``feed(item)`` turns one provider item into:

* a ``str``: text (the common case, kept cheap),
* ``None``: nothing for the consumer (a role chunk, a tool-call fragment...),
* an :class:`~l0_core.events.Event` or a list of events (tool calls, data...);
  a list may hold :class:`~l0_core.events.Token` events too, when one item
  carries both text and other events.

``feed`` raises an :class:`~l0_core.errors.L0Error` for an in-band error or an
item it does not understand. ``finish()`` is called when the stream ends and
returns a :class:`Finish` (finish reason, usage) or raises ``INCOMPLETE`` when
the provider's terminal marker never came.

Streams of ``str`` and of L0 events need no adapter: the runtime reads them
directly (built-in adapters ``text`` and ``events``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import Event

__all__ = ["Adapter", "AdapterSession", "EventsAdapter", "FeedResult", "Finish", "TextAdapter"]

FeedResult = str | Event | Sequence[Event] | None


@dataclass(frozen=True, slots=True)
class Finish:
    """How a stream ended, as the adapter saw it."""

    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None


@runtime_checkable
class AdapterSession(Protocol):
    def feed(self, item: Any) -> FeedResult: ...

    def finish(self) -> Finish: ...


@runtime_checkable
class Adapter(Protocol):
    name: str

    def detect(self, item: Any) -> bool: ...

    def open(self, options: Mapping[str, Any] | None = None) -> AdapterSession: ...


class _TextSession:
    __slots__ = ()

    def feed(self, item: Any) -> FeedResult:
        if type(item) is str:
            return item
        raise L0Error(
            f"the text adapter got a {type(item).__name__} item; a stream read as text must "
            f"yield only str",
            ErrorCode.INVALID_STREAM,
        )

    def finish(self) -> Finish:
        return Finish("stop")


class TextAdapter:
    """Streams of ``str``. The runtime reads these inline; this is its registry entry."""

    name = "text"

    def detect(self, item: Any) -> bool:
        return isinstance(item, str)

    def open(self, options: Mapping[str, Any] | None = None) -> AdapterSession:
        return _TextSession()


class _EventsSession:
    __slots__ = ("finish_reason", "usage")

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.usage: Mapping[str, Any] | None = None

    def feed(self, item: Any) -> FeedResult:
        if not isinstance(item, Event):
            raise L0Error(
                f"the events adapter got a {type(item).__name__} item; a stream of L0 events "
                f"must yield only l0_core events",
                ErrorCode.INVALID_STREAM,
            )
        if item.is_token:
            return item.text
        if item.is_error and item.error is not None:
            raise item.error
        if item.is_complete:
            self.finish_reason = getattr(item, "finish_reason", None) or "stop"
            self.usage = item.usage
            return None
        return item

    def finish(self) -> Finish:
        return Finish(self.finish_reason or "stop", self.usage)


class EventsAdapter:
    """Streams of L0 events (``l0_core.Token`` and friends); error events are raised."""

    name = "events"

    def detect(self, item: Any) -> bool:
        return isinstance(item, Event)

    def open(self, options: Mapping[str, Any] | None = None) -> AdapterSession:
        return _EventsSession()

"""Spans in both of sentry-sdk's tracing modes, behind one small handle.

sentry-sdk records spans in a transaction (the default) or, with
``trace_lifecycle="stream"``, as independently streamed spans with another API. The observer
only starts children of the span that is current when a session starts, sets data, and ends
them with an outcome, so both modes fit in ``SpanHandle``. Spans are never made current:
one attached to the context across the stream's ``yield`` would leak into the consumer.
"""

from __future__ import annotations

from typing import Any, Literal

import sentry_sdk
from sentry_sdk.tracing import Span

__all__ = ["Outcome", "SpanHandle", "current_parent"]

Outcome = Literal["ok", "error", "cancelled"]

# the transaction mode's statuses; the streaming mode knows only ok and error
_LEGACY_STATUS = {"ok": "ok", "error": "internal_error", "cancelled": "cancelled"}


class SpanHandle:
    """A started span of either mode."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def child(self, op: str, name: str, origin: str) -> SpanHandle:
        if isinstance(self._span, Span):
            return SpanHandle(self._span.start_child(op=op, name=name, origin=origin))
        from sentry_sdk import traces  # only sentry-sdk versions with the streaming mode

        return SpanHandle(traces.start_span(
            name=name, attributes={"sentry.op": op, "sentry.origin": origin},
            parent_span=self._span, active=False))

    def set(self, key: str, value: Any) -> None:
        if isinstance(self._span, Span):
            self._span.set_data(key, value)
        else:
            self._span.set_attribute(key, value)

    def end(self, outcome: Outcome) -> None:
        if isinstance(self._span, Span):
            self._span.set_status(_LEGACY_STATUS[outcome])
            self._span.finish()
        else:
            self._span.status = "ok" if outcome == "ok" else "error"
            self._span.end()


def current_parent() -> SpanHandle | None:
    """The span that is current now, in whichever mode, or ``None`` outside any trace."""
    span = sentry_sdk.get_current_span()
    if span is not None:
        return SpanHandle(span)
    streamed = getattr(sentry_sdk.get_current_scope(), "streamed_span", None)
    if streamed is not None and type(streamed).__name__ == "StreamedSpan":
        return SpanHandle(streamed)
    return None

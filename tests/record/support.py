"""Recording a session and replaying it, and what the two must have in common."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import l0_core as l0
from l0_core.record.codec import jsonable

CALLBACKS = ("on_start", "on_complete", "on_error", "on_retry", "on_fallback", "on_resume",
             "on_checkpoint", "on_violation", "on_abort", "on_drift", "on_tool_call",
             "on_token", "on_timeout")


def describe(event: l0.Event) -> Any:
    """Everything a consumer event says, comparable across a JSON round trip."""
    if event.is_token:
        return ("token", event.text)
    if event.is_error:
        err = event.error
        assert err is not None
        return ("error", type(err).__name__, err.code.value, err.message, err.status,
                event.will_retry, event.will_fallback)  # type: ignore[attr-defined]
    if event.is_discard:
        return ("discard", event.text, event.offset, event.attempt, event.reason)  # type: ignore[attr-defined]
    if event.is_complete:
        return ("complete", event.text, jsonable(event.usage),
                event.finish_reason)  # type: ignore[attr-defined]
    if isinstance(event, l0.ToolCall):
        return ("tool_call", event.id, event.name, jsonable(event.arguments), event.index)
    # the class and every field (an Image's mime type, partial, id; bytes as base64)
    slots = sorted({name for cls in type(event).__mro__ for name in getattr(cls, "__slots__", ())})
    return (event.type.value, type(event).__name__,
            {name: jsonable(getattr(event, name, None)) for name in slots})


def describe_obs(event: l0.ObservabilityEvent) -> Any:
    """An observability event as its JSON shape (what observers could serialise).

    A ``TOKEN`` event's ``ts`` is left out: the recorder times each token itself (the
    same clock, a few microseconds apart), it does not build the event.
    """
    shape = json.loads(json.dumps(jsonable(event.to_dict())))
    if shape["type"] == "TOKEN":
        del shape["ts"]
    return shape


def describe_call(args: tuple[Any, ...]) -> Any:
    out: list[Any] = []
    for arg in args:
        if isinstance(arg, l0.L0Error):
            out.append(("L0Error", type(arg).__name__, arg.code.value, arg.message))
        elif isinstance(arg, l0.State):
            out.append(("State", arg.content, arg.completed, arg.attempt, arg.fallback_index))
        elif isinstance(arg, l0.Violation):
            out.append(("Violation", arg.rule, arg.message, arg.severity))
        else:
            out.append(json.loads(json.dumps(jsonable(arg))))
    return out


@dataclass
class Seen:
    """What one consumer saw of a stream: its events, its observers, its callbacks."""

    events: list[Any] = field(default_factory=list)
    obs: list[Any] = field(default_factory=list)
    calls: list[Any] = field(default_factory=list)
    raised: Any = None
    state: Any = None

    def kwargs(self) -> dict[str, Any]:
        def make(name: str) -> Any:
            return lambda *args: self.calls.append((name, describe_call(args)))

        return {"on_event": lambda e: self.obs.append(describe_obs(e)),
                **{name: make(name) for name in CALLBACKS}}

    async def consume(self, stream: Any) -> None:
        try:
            async for event in stream:
                self.events.append(describe(event))
        except l0.L0Error as error:
            self.raised = (type(error).__name__, error.code.value, error.message)
        st = stream.state
        self.state = (st.content, st.completed, st.aborted, st.attempt, st.fallback_index,
                      st.model_retry_count, st.network_retry_count, st.token_count,
                      len(st.errors), [v.rule for v in st.violations], st.drift_detected,
                      st.resumed, st.finish_reason)


async def record_and_replay(url: str, **options: Any) -> tuple[Seen, Seen, l0.Stream]:
    """Run a session recorded to ``url``, then replay it: both as a consumer sees them."""
    live, again = Seen(), Seen()
    stream = l0.run(record=url, **options, **live.kwargs())
    await live.consume(stream)
    await stream.recording.wait()
    await again.consume(l0.replay(stream.id, store=url, **again.kwargs()))
    return live, again, stream


def assert_same(live: Seen, again: Seen) -> None:
    assert again.events == live.events
    assert again.raised == live.raised
    assert again.obs == live.obs
    assert again.calls == live.calls
    assert again.state == live.state


async def text_of(stream: AsyncIterator[l0.Event]) -> str:
    return "".join([e.text or "" async for e in stream if e.is_token])

"""Test helpers: consume a stream the way an honest consumer does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import l0_core as l0


@dataclass
class Consumed:
    events: list[l0.Event] = field(default_factory=list)
    text: str = ""  # tokens minus discarded text: what a consumer keeps
    error: BaseException | None = None

    @property
    def kinds(self) -> list[str]:
        return [e.type.value for e in self.events]


async def consume(stream: Any) -> Consumed:
    out = Consumed()
    try:
        async for event in stream:
            out.events.append(event)
            if event.is_token:
                out.text += event.text
            elif event.is_discard:
                assert out.text[event.offset :] == event.text
                out.text = out.text[: event.offset]
    except BaseException as exc:
        out.error = exc
    return out


class Recorder:
    """Collects observability events."""

    def __init__(self) -> None:
        self.events: list[l0.ObservabilityEvent] = []

    def __call__(self, event: l0.ObservabilityEvent) -> None:
        self.events.append(event)

    @property
    def types(self) -> list[str]:
        return [e.type.value for e in self.events]

    def of(self, name: str) -> list[l0.ObservabilityEvent]:
        return [e for e in self.events if e.type.value == name]

"""What the provider integration tests share: the scripted answer, timers, and a
comparable description of a stream's events (no provider SDK is imported here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import l0_core as l0
from l0_core.testing.openai_server import Turn

MODEL = "gpt-4o"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Say hello to the world."}]
TOKENS = ["Hello", ", ", "world", "!"]
TEXT = "Hello, world!"
OK = Turn(tokens=TOKENS)
OK_EVENTS = [*(f"token:{t}" for t in TOKENS), f"complete:{TEXT}"]

FAST = l0.Timeout(initial_token=5.0, inter_token=5.0)
"""Timers for tests without stalls (generous: they should never fire)."""
SHORT = l0.Timeout(initial_token=0.3, inter_token=0.3)
"""Timers for stall tests."""


def describe(event: l0.Event) -> str:
    """A short, comparable description of a consumer event."""
    if event.is_token:
        return f"token:{event.text}"
    if event.is_error:
        assert event.error is not None
        what = "retry" if event.will_retry else "fallback" if event.will_fallback else "halt"
        return f"error:{event.error.code.value}:{what}"
    if event.is_discard:
        return f"discard:{event.text}"
    if event.is_complete:
        return f"complete:{event.text}"
    if isinstance(event, l0.ToolCall):
        return f"tool:{event.id}:{event.name}:{json.dumps(event.arguments, sort_keys=True)}"
    return type(event).__name__


async def collect(stream: AsyncIterator[l0.Event]) -> list[str]:
    return [describe(event) async for event in stream]

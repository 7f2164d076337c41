"""Helpers for the l0-otel tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from l0_core.testing import Script, ScriptedSource

GPT4O = {"provider": "openai", "model": "gpt-4o", "operation": "chat"}
MINI = {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat"}
REQUEST = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
           "gen_ai.request.model": "gpt-4o"}
"""The bounded metric attributes of a session against gpt-4o."""


def source(*scripts: Script, described: Mapping[str, str] | None = GPT4O) -> ScriptedSource:
    """A scripted factory that describes itself as ``l0.wrap(client)`` does."""
    made = ScriptedSource(list(scripts))
    if described is not None:
        made.l0_source = dict(described)  # type: ignore[attr-defined]
    return made


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes or {})) for e in span.events]


def summary(**overrides: Any) -> dict[str, Any]:
    """The L0 attributes of a session span: a clean session, then ``overrides``."""
    base: dict[str, Any] = {
        "l0.outcome": "completed", "l0.attempts": 1, "l0.retries": 0, "l0.retries.network": 0,
        "l0.retries.model": 0, "l0.fallback.index": 0, "l0.guardrail.violations": 0,
        "l0.drift.detected": False, "l0.timeouts": 0, "l0.checkpoints": 0, "l0.resumed": False,
    }
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return base


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: Any) -> int:
    context = span.get_span_context() if hasattr(span, "get_span_context") else span.context
    return int(context.span_id)

"""The ``otel`` observer: each L0 session becomes a span tree and a few metric points.

The tree (see docs/observability.md for a full example)::

    chat gpt-4o                 session span, kind CLIENT, child of the caller's span
    ├── l0.attempt 1            one INTERNAL span per attempt (retries and fallbacks)
    │   └── POST /v1/chat/...   the provider SDK's HTTP span, when that is instrumented
    └── l0.attempt 2

Nothing happens per token: observers never see tokens, and the handlers below run a few
times per attempt (a dictionary lookup for every other event). One observer object may
serve many sessions at once (``observers=[OtelObserver(...)]`` shares it), so every bit of
state lives in a :class:`_Session` keyed by the session id, created at ``SESSION_START``
and dropped at ``SESSION_END`` (always the last event, on every path).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from l0_core import ObservabilityEvent, ObservabilityEventType
from l0_otel._telemetry import Telemetry, telemetry

__all__ = ["CAPTURE_CONTENT_ENV", "OtelObserver"]

T = ObservabilityEventType
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# "true" is the original opt-in; the latest experimental conventions use the modes below
# (events are not written by this observer, so EVENT_ONLY records nothing on the span).
_CAPTURE_VALUES = frozenset({"true", "1", "span_only", "span_and_event"})


def capture_content_from_env() -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` opts in to content."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_VALUES


def _current_task() -> object | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop (a synchronous emit): the thread is the owner
        return None


class _Session:
    """What one session has recorded so far. Only the observer touches it."""

    __slots__ = (
        "attempt", "attempt_span", "attempt_ts", "attempts", "checkpoints", "drift",
        "error_type", "failed", "fallback_index", "first_ts", "metric_attrs", "model",
        "operation", "provider", "resumed", "retries", "retries_network", "span", "timeouts",
        "token", "token_task", "violations",
    )

    def __init__(self, span: Span, ts: float) -> None:
        self.span = span
        self.first_ts = ts
        self.attempt_span: Span | None = None
        self.token: object | None = None  # the context token while the attempt span is current
        self.token_task: object | None = None
        self.attempts = 0
        self.attempt_ts = ts
        self.attempt = 0
        self.fallback_index = 0
        self.operation: str | None = None
        self.provider: str | None = None
        self.model: str | None = None
        self.error_type: str | None = None
        self.failed = False
        self.retries = self.retries_network = 0
        self.violations = self.timeouts = self.checkpoints = 0
        self.drift = self.resumed = False
        self.metric_attrs: dict[str, str] = {}


class OtelObserver:
    """Registered as ``otel``: ``l0.run(..., observers=["otel"])`` or ``observers =
    ["otel"]`` in ``l0.toml``.

    :param tracer_provider: where spans go (default: the global tracer provider).
    :param meter_provider: where metrics go (default: the global meter provider).
    :param capture_content: record the output text on the session span
        (``gen_ai.output.messages``). Default: off, unless
        ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` opts in.
    """

    name = "otel"

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_content: bool | None = None,
    ) -> None:
        self._t: Telemetry = telemetry(tracer_provider, meter_provider)
        self.capture_content = (capture_content_from_env() if capture_content is None
                                else capture_content)
        self._sessions: dict[str, _Session] = {}

    def on_event(self, event: ObservabilityEvent) -> None:
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            session = self._sessions.get(event.stream_id)
            if session is not None:
                handler(self, session, event)
        elif event.type is T.SESSION_START:
            self._start(event)

    # -- the session span ------------------------------------------------------------------

    def _start(self, event: ObservabilityEvent) -> None:
        # The caller's current context is the parent: SESSION_START is emitted inside the
        # first read of the stream, in the caller's task.
        span = self._t.tracer.start_span("l0.session", kind=SpanKind.CLIENT,
                                         attributes={"l0.session.id": event.stream_id})
        self._sessions[event.stream_id] = _Session(span, event.ts)

    def _end(self, s: _Session, event: ObservabilityEvent) -> None:
        self._sessions.pop(event.stream_id, None)
        self._detach(s)
        outcome = _outcome(s, event)
        if s.attempt_span is not None:  # left open by an abort, a cancellation or a break
            _end_attempt(s, outcome)
        span = s.span
        span.set_attributes(_summary_attributes(s, outcome))
        if outcome in ("error", "aborted", "cancelled"):
            error_type = s.error_type or outcome
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR, error_type))
            s.metric_attrs["error.type"] = error_type
        span.end()
        self._t.duration.record(max(0.0, (event.ts - s.first_ts) / 1000.0), s.metric_attrs)

    # -- attempts ------------------------------------------------------------------------------

    def _stream_init(self, s: _Session, event: ObservabilityEvent) -> None:
        self._detach(s)
        if s.attempt_span is not None:
            _end_attempt(s, "superseded")
        source = event.meta.get("source")
        if isinstance(source, Mapping):
            _describe(s, source)
        else:  # an undescribed factory (a fallback of your own): its model is unknown
            s.model = None
        s.attempts += 1
        s.attempt = s.attempts
        s.attempt_ts = event.ts
        parent = trace.set_span_in_context(s.span)
        attrs: dict[str, Any] = {"l0.attempt.number": s.attempt,
                                 "l0.fallback.index": s.fallback_index}
        if isinstance(source, Mapping) and source.get("model"):
            attrs["gen_ai.request.model"] = str(source["model"])
        span = self._t.tracer.start_span(f"l0.attempt {s.attempt}", parent,
                                         kind=SpanKind.INTERNAL, attributes=attrs)
        s.attempt_span = span
        # The factory is called, awaited and its first item read between STREAM_INIT and
        # STREAM_READY, with no yield to the consumer in between: the attempt span is made
        # current for exactly that window, so the provider SDK's HTTP span is its child,
        # and detached at STREAM_READY (or ERROR, or the end) in the same task.
        s.token = otel_context.attach(trace.set_span_in_context(span, parent))
        s.token_task = _current_task()

    def _stream_ready(self, s: _Session, event: ObservabilityEvent) -> None:
        self._detach(s)
        attrs = _request_attrs(s)
        if s.model is not None:  # this attempt's model: a fallback's may differ
            attrs["gen_ai.request.model"] = s.model
        self._t.first_chunk.record(max(0.0, (event.ts - s.attempt_ts) / 1000.0), attrs)

    def _detach(self, s: _Session) -> None:
        token = s.token
        if token is None:
            return
        s.token = None
        # Only the task that attached may detach: a context token cannot be reset from
        # another task's context (that would raise, and OpenTelemetry would log it).
        if _current_task() is s.token_task:
            otel_context.detach(token)  # type: ignore[arg-type]

    # -- what happens to an attempt ----------------------------------------------------------

    def _error(self, s: _Session, event: ObservabilityEvent) -> None:
        self._detach(s)
        meta = event.meta
        code = str(meta.get("errorCode") or "UNKNOWN_ERROR")
        s.error_type = code
        s.failed = not (meta.get("willRetry") or meta.get("willFallback"))
        span = s.attempt_span
        if span is not None:
            span.set_attributes({"error.type": code,
                                 "l0.error.category": str(meta.get("failureType") or "unknown"),
                                 "l0.recovery": str(meta.get("recoveryStrategy") or "halt")})
            span.set_status(Status(StatusCode.ERROR, code))
            span.end()
            s.attempt_span = None

    def _retry(self, s: _Session, event: ObservabilityEvent) -> None:
        # Counted here, like L0's own retry counts: a network retry (timeouts included)
        # does not use up the model retry budget.
        reason = s.error_type or "UNKNOWN_ERROR"
        s.retries += 1
        if event.meta.get("isNetwork"):
            s.retries_network += 1
        self._t.retries.add(1, {**_request_attrs(s), "l0.retry.reason": reason})
        s.span.add_event("l0.retry", {
            "l0.attempt.number": int(event.meta.get("attempt") or 0),
            "l0.retry.delay_ms": float(event.meta.get("delayMs") or 0.0),
            "error.type": reason,
        })

    def _fallback(self, s: _Session, event: ObservabilityEvent) -> None:
        to = int(event.meta.get("toIndex") or 0)
        s.span.add_event("l0.fallback", {"l0.fallback.from": int(event.meta.get("fromIndex") or 0),
                                         "l0.fallback.to": to,
                                         "error.type": s.error_type or "UNKNOWN_ERROR"})
        self._t.fallbacks.add(1, {**_request_attrs(s), "l0.fallback.to": to})
        s.fallback_index = to

    def _timeout(self, s: _Session, event: ObservabilityEvent) -> None:
        kind = str(event.meta.get("timeoutType") or "unknown")
        s.timeouts += 1
        s.span.add_event("l0.timeout", {"l0.timeout.type": kind,
                                        "l0.attempt.number": s.attempt})
        self._t.timeouts.add(1, {**_request_attrs(s), "l0.timeout.type": kind})

    def _guardrail(self, s: _Session, event: ObservabilityEvent) -> None:
        if event.meta.get("passed", True):
            return
        violation = event.meta.get("violation")
        severity = str(violation.get("severity", "error")) if isinstance(violation, Mapping) \
            else "error"
        rule = str(event.meta.get("ruleId") or "unknown")
        s.violations += 1
        # the violation's message may quote the output: it is content, so it is left out
        s.span.add_event("l0.guardrail.violation", {"l0.guardrail.rule": rule,
                                                    "l0.guardrail.severity": severity,
                                                    "l0.attempt.number": s.attempt})
        self._t.violations.add(1, {**_request_attrs(s), "l0.guardrail.rule": rule,
                                   "l0.guardrail.severity": severity})

    def _drift(self, s: _Session, event: ObservabilityEvent) -> None:
        if not event.meta.get("detected"):
            return
        types = [str(t) for t in event.meta.get("types") or ()]
        s.drift = True
        s.span.add_event("l0.drift", {"l0.drift.types": types,
                                      "l0.drift.score": float(event.meta.get("score") or 0.0),
                                      "l0.attempt.number": s.attempt})
        self._t.drifts.add(1, _request_attrs(s))

    def _checkpoint(self, s: _Session, event: ObservabilityEvent) -> None:
        s.checkpoints += 1  # possibly many per session: counted, never one event each

    def _resume(self, s: _Session, event: ObservabilityEvent) -> None:
        s.resumed = True
        s.span.add_event("l0.resume", {"l0.attempt.number": s.attempt + 1,
                                       "l0.resume.token_count": int(
                                           event.meta.get("tokenCount") or 0)})

    def _complete(self, s: _Session, event: ObservabilityEvent) -> None:
        state = event.meta.get("_state")
        span = s.span
        if s.attempt_span is not None:
            s.attempt_span.end()
            s.attempt_span = None
        s.error_type, s.failed = None, False
        if s.model is not None:
            span.set_attribute("gen_ai.response.model", s.model)
            s.metric_attrs["gen_ai.response.model"] = s.model
        if state is None:
            return
        if state.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [str(state.finish_reason)])
        self._usage(s, state.usage)
        if self.capture_content:
            message = {"role": "assistant", "parts": [{"type": "text", "content": state.content}],
                       "finish_reason": state.finish_reason or "stop"}
            span.set_attribute("gen_ai.output.messages", json.dumps([message]))

    def _usage(self, s: _Session, usage: Mapping[str, Any] | None) -> None:
        if not usage:
            return
        for token_type, keys in (("input", ("input_tokens", "prompt_tokens")),
                                 ("output", ("output_tokens", "completion_tokens"))):
            value = next((usage[k] for k in keys if isinstance(usage.get(k), int)), None)
            if value is None:
                continue
            s.span.set_attribute(f"gen_ai.usage.{token_type}_tokens", value)
            self._t.token_usage.record(value, {**s.metric_attrs, "gen_ai.token.type": token_type})


# -- helpers (module functions: no per-call attribute lookups on the observer) ----------------


def _describe(s: _Session, source: Mapping[str, Any]) -> None:
    """The first attempt that describes itself names the session (GenAI span name:
    ``{gen_ai.operation.name} {gen_ai.request.model}``); later attempts update the model
    the response comes from (a fallback's)."""
    model = source.get("model")
    s.model = str(model) if model else None
    if s.operation is not None:
        return
    s.operation = str(source.get("operation") or "chat")
    s.provider = str(source["provider"]) if source.get("provider") else None
    attrs = {"gen_ai.operation.name": s.operation}
    if s.provider is not None:
        attrs["gen_ai.provider.name"] = s.provider
        attrs["gen_ai.system"] = s.provider  # the name before semconv 1.37, still read widely
    if s.model is not None:
        attrs["gen_ai.request.model"] = s.model
    s.span.set_attributes(attrs)
    s.span.update_name(f"{s.operation} {s.model}" if s.model else s.operation)
    s.metric_attrs.update(attrs)
    s.metric_attrs.pop("gen_ai.system", None)


def _request_attrs(s: _Session) -> dict[str, str]:
    """Bounded-cardinality metric attributes: operation, provider and request model only."""
    return {k: v for k, v in s.metric_attrs.items()
            if k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")}


def _outcome(s: _Session, event: ObservabilityEvent) -> str:
    if event.meta.get("completed"):
        return "completed"
    if s.error_type == "STREAM_ABORTED":
        return "aborted"
    if s.failed:
        return "error"
    task = _current_task()
    if isinstance(task, asyncio.Task) and task.cancelling():
        s.error_type = "cancelled"
        return "cancelled"
    # the consumer stopped reading (a break, or the stream closed unread): its choice,
    # not a failure, so the status stays unset
    return "stopped"


def _end_attempt(s: _Session, outcome: str) -> None:
    span = s.attempt_span
    assert span is not None
    span.set_attribute("l0.outcome", outcome)
    if outcome in ("aborted", "cancelled"):
        span.set_attribute("error.type", s.error_type or outcome)
        span.set_status(Status(StatusCode.ERROR, s.error_type or outcome))
    span.end()
    s.attempt_span = None


def _summary_attributes(s: _Session, outcome: str) -> dict[str, Any]:
    return {
        "l0.outcome": outcome,
        "l0.attempts": s.attempts,
        "l0.retries": s.retries,
        "l0.retries.network": s.retries_network,
        "l0.retries.model": s.retries - s.retries_network,
        "l0.fallback.index": s.fallback_index,
        "l0.guardrail.violations": s.violations,
        "l0.drift.detected": s.drift,
        "l0.timeouts": s.timeouts,
        "l0.checkpoints": s.checkpoints,
        "l0.resumed": s.resumed,
    }


Handler = Callable[[OtelObserver, _Session, ObservabilityEvent], None]

_HANDLERS: dict[ObservabilityEventType, Handler] = {
    T.STREAM_INIT: OtelObserver._stream_init,
    T.STREAM_READY: OtelObserver._stream_ready,
    T.ERROR: OtelObserver._error,
    T.RETRY_ATTEMPT: OtelObserver._retry,
    T.FALLBACK_START: OtelObserver._fallback,
    T.TIMEOUT_TRIGGERED: OtelObserver._timeout,
    T.GUARDRAIL_RULE_RESULT: OtelObserver._guardrail,
    T.DRIFT_CHECK_RESULT: OtelObserver._drift,
    T.CHECKPOINT_SAVED: OtelObserver._checkpoint,
    T.RESUME_START: OtelObserver._resume,
    T.COMPLETE: OtelObserver._complete,
    T.SESSION_END: OtelObserver._end,
}

"""The ``sentry`` observer: one instance per L0 session, reporting it to Sentry.

What a session becomes in Sentry:

* **breadcrumbs** (category ``l0.*``) for each attempt's error, retry, fallback, timeout,
  guardrail violation, drift and abort. They are kept by the session while it runs and given
  to the application's isolation scope (the one current when the session started) as one
  block when it ends, so concurrent sessions never interleave theirs; a failed session's
  event is captured in a fork of that scope holding its own breadcrumbs only;
* **one error event per failed session** (never one per attempt), sent at ``SESSION_END``
  with the last attempt's exception, grouped by its error code (fingerprint
  ``["l0", code]``), the ``l0`` context (every attempt's code, attempts, fallback index,
  checkpoint length, stream id) and ``l0.*`` tags;
* optionally a **warning event** for a session that only succeeded on a fallback;
* **spans**: an ``l0.session`` span under the current span, and a ``gen_ai.<operation>``
  span per attempt following Sentry's AI conventions, unless a Sentry integration named
  after the provider (Sentry's own ``openai`` integration) already records each request:
  then its spans are the attempts and L0 adds none, so tokens are never counted twice.

Spans are started as children of the span current at ``SESSION_START`` and ended
explicitly, never made the current span: a span attached to a context across the
stream's ``yield`` would leak into the consumer's code or fail to detach in another task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sentry_sdk
from sentry_sdk.scope import Scope, should_send_default_pii, use_isolation_scope
from sentry_sdk.utils import event_from_exception

from l0_core import L0Error, ObservabilityEvent, ObservabilityEventType
from l0_sentry.integration import L0Integration, Options, current_options
from l0_sentry.spans import Outcome, SpanHandle, current_parent

__all__ = ["SentryObserver"]

T = ObservabilityEventType
Handler = Callable[["SentryObserver", ObservabilityEvent], None]

# Sentry's ops for the operations a factory may describe in its ``l0_source``.
_OPS = {
    "chat": "gen_ai.chat",
    "responses": "gen_ai.responses",
    "text_completion": "gen_ai.text_completion",
    "completion": "gen_ai.text_completion",
}
_TIMEOUT_CODES = {"INITIAL_TOKEN_TIMEOUT", "INTER_TOKEN_TIMEOUT", "TOTAL_TIMEOUT", "TIMEOUT"}


class SentryObserver:
    """Registered as ``sentry`` (``observers=["sentry"]``); options as ``L0Integration``'s.

    Keyword options given here (from L0's configuration, ``observers = [{ name = "sentry",
    capture_degraded = true }]``) win over the integration's for the sessions it observes.
    """

    name = "sentry"

    def __init__(
        self,
        *,
        breadcrumbs: bool | None = None,
        capture_errors: bool | None = None,
        capture_degraded: bool | None = None,
        spans: bool | None = None,
        include_prompts: bool | None = None,
    ) -> None:
        given = {"breadcrumbs": breadcrumbs, "capture_errors": capture_errors,
                 "capture_degraded": capture_degraded, "spans": spans,
                 "include_prompts": include_prompts}
        self._overrides = {key: value for key, value in given.items() if value is not None}
        self.options: Options | None = None  # None until SESSION_START, and without Sentry
        self._app_scope: Scope | None = None
        self._crumbs: list[dict[str, Any]] = []
        self._source: Mapping[str, Any] = {}
        self._models: list[str] = []
        self._codes: list[str] = []
        self._attempts = 0
        self._last_error: L0Error | None = None
        self._terminal = False
        self._aborted = False
        self._fallback_index = 0
        self._session_span: SpanHandle | None = None
        self._attempt_span: SpanHandle | None = None
        self._attempt_t0 = 0.0
        self._first_token_s: float | None = None
        self._stream_id = ""

    def on_event(self, event: ObservabilityEvent) -> None:
        handler = _HANDLERS.get(event.type)
        if handler is None:
            return
        if event.type is T.SESSION_START:
            self.options = current_options(self._overrides)
        if self.options is not None:
            handler(self, event)

    # -- scope and breadcrumbs ---------------------------------------------------------------

    def _event_scope(self) -> Scope:
        """An isolation scope for this session's event: the application's, forked when the
        event is sent, plus this session's breadcrumbs (and no other session's)."""
        assert self._app_scope is not None
        scope = self._app_scope.fork()
        for crumb in self._crumbs:
            scope.add_breadcrumb(crumb)
        return scope

    def _breadcrumb(self, category: str, message: str, level: str = "info",
                    **data: Any) -> None:
        assert self.options is not None
        if self.options.breadcrumbs:
            data["stream_id"] = self._stream_id
            self._crumbs.append({
                "type": "default", "category": f"l0.{category}", "message": message,
                "level": level, "timestamp": datetime.now(UTC),
                "data": {key: value for key, value in data.items() if value is not None},
            })

    def _text_allowed(self) -> bool:
        """Text goes to Sentry only when both L0 (``include_prompts``) and the application's
        Sentry options allow it: ``data_collection``'s ``gen_ai.outputs`` when given (newer
        sentry-sdk), else ``send_default_pii``."""
        assert self.options is not None
        if not self.options.include_prompts:
            return False
        collection = sentry_sdk.get_client().options.get("data_collection")
        if isinstance(collection, Mapping) and collection.get("provided_by_user"):
            return bool((collection.get("gen_ai") or {}).get("outputs"))
        return should_send_default_pii()

    # -- session and attempts ----------------------------------------------------------------

    def _on_session_start(self, event: ObservabilityEvent) -> None:
        assert self.options is not None
        self._stream_id = event.stream_id
        self._app_scope = sentry_sdk.get_isolation_scope()
        if self.options.spans:
            parent = current_parent()
            if parent is not None:  # spans only inside a trace the application started
                self._session_span = parent.child("l0.session", "l0 session",
                                                  L0Integration.origin)
                self._session_span.set("l0.stream_id", event.stream_id)

    def _on_stream_init(self, event: ObservabilityEvent) -> None:
        self._attempts += 1
        source = event.get("source") or {}
        self._source = source
        model = source.get("model")
        if model and model not in self._models:
            self._models.append(str(model))
        self._first_token_s = None
        self._attempt_t0 = time.perf_counter()
        if self._session_span is not None and not self._provider_records_requests():
            self._start_attempt_span(source)

    def _provider_records_requests(self) -> bool:
        """A Sentry integration named after the provider (``openai``) makes its own span per
        request: then that span is the attempt's, and a second one would count tokens twice."""
        provider = self._source.get("provider")
        return bool(provider) and provider in sentry_sdk.get_client().integrations

    def _start_attempt_span(self, source: Mapping[str, Any]) -> None:
        assert self._session_span is not None
        operation = str(source.get("operation") or "chat")
        model = source.get("model")
        span = self._session_span.child(_OPS.get(operation, f"gen_ai.{operation}"),
                                        f"{operation} {model}" if model else operation,
                                        L0Integration.origin)
        span.set("gen_ai.operation.name", operation)
        span.set("gen_ai.system", source.get("provider") or "unknown")
        if model:
            span.set("gen_ai.request.model", model)
        span.set("gen_ai.response.streaming", True)
        span.set("l0.attempt", self._attempts)
        span.set("l0.fallback_index", self._fallback_index)
        self._attempt_span = span

    def _on_first_token(self, event: ObservabilityEvent) -> None:
        # the watchdog switches from the initial to the inter-token timer at the first token
        if self._first_token_s is None and event.get("timeoutType") == "inter":
            self._first_token_s = time.perf_counter() - self._attempt_t0

    def _end_attempt_span(self, outcome: Outcome, code: str | None = None) -> None:
        span, self._attempt_span = self._attempt_span, None
        if span is None:
            return
        if self._first_token_s is not None:
            span.set("gen_ai.response.time_to_first_token", self._first_token_s)
        if code is not None:
            span.set("l0.error_code", code)
        span.end(outcome)

    # -- outcomes ----------------------------------------------------------------------------

    def _on_error(self, event: ObservabilityEvent) -> None:
        error = event.get("_error")
        code = str(event.get("errorCode") or getattr(getattr(error, "code", None), "value", ""))
        self._codes.append(code)
        self._last_error = error if isinstance(error, L0Error) else None
        self._terminal = not event.get("willRetry") and not event.get("willFallback")
        self._end_attempt_span("cancelled" if code == "STREAM_ABORTED" else "error", code)
        if code == "STREAM_ABORTED":
            return  # the application asked for it: the abort breadcrumb follows
        self._breadcrumb(
            "error", f"attempt {self._attempts} failed: {code}", level="error", code=code,
            attempt=self._attempts, fallback_index=self._fallback_index,
            recovery=event.get("recoveryStrategy"), will_retry=event.get("willRetry"),
            will_fallback=event.get("willFallback"),
        )

    def _on_complete(self, event: ObservabilityEvent) -> None:
        state = event.get("_state")
        span = self._attempt_span
        if span is not None and state is not None:
            _usage_data(span, state.usage)
            if state.finish_reason:
                span.set("gen_ai.response.finish_reasons", [state.finish_reason])
            if self._text_allowed():
                span.set("gen_ai.response.text", state.content)
        self._end_attempt_span("ok")
        assert self.options is not None
        if self._fallback_index > 0 and self.options.capture_degraded:
            self._capture_degraded()

    def _on_session_end(self, event: ObservabilityEvent) -> None:
        assert self.options is not None
        error = self._last_error
        ended_badly = not event.get("completed")
        failed = ended_badly and self._terminal and error is not None and not self._aborted
        cancelled = ended_badly and not failed
        self._end_attempt_span("cancelled")
        if failed and error is not None and self.options.capture_errors \
                and error.code.value not in self.options.ignore_codes:
            self._capture_failure(error)
        assert self._app_scope is not None
        for crumb in self._crumbs:  # the application's later events tell this story too
            self._app_scope.add_breadcrumb(crumb)
        span, self._session_span = self._session_span, None
        if span is not None:
            span.set("l0.attempts", self._attempts)
            span.set("l0.fallback_index", self._fallback_index)
            if self._codes:
                span.set("l0.error_codes", list(self._codes))
            span.end("error" if failed else "cancelled" if cancelled else "ok")

    def _context(self) -> dict[str, Any]:
        """The ``l0`` context of an event: the whole story of the session, without text."""
        error = self._last_error
        checkpoint = (error.checkpoint if error is not None else None) or ""
        context: dict[str, Any] = {
            "stream_id": self._stream_id,
            "error_codes": list(self._codes),
            "attempts": self._attempts,
            "fallback_index": self._fallback_index,
            "models": list(self._models),
            "checkpoint_length": len(checkpoint),
        }
        if error is not None:
            context["error_code"] = error.code.value
            context["error_category"] = error.category.value
        if self._text_allowed() and checkpoint:
            context["checkpoint"] = checkpoint
        return context

    def _tags(self, code: str) -> dict[str, str]:
        tags = {"l0.error_code": code, "l0.fallback_index": str(self._fallback_index)}
        for key in ("provider", "model"):
            if self._source.get(key):
                tags[f"l0.{key}"] = str(self._source[key])
        return tags

    def _capture_failure(self, error: L0Error) -> None:
        code = error.code.value
        client = sentry_sdk.get_client()
        event, hint = event_from_exception(error, client_options=client.options,
                                           mechanism={"type": "l0", "handled": True})
        if not self._text_allowed():
            _drop_l0_frame_variables(event)
        with use_isolation_scope(self._event_scope()):
            sentry_sdk.capture_event(
                event, hint=hint, fingerprint=["l0", code], level="error",
                tags=self._tags(code), contexts={"l0": self._context()})

    def _capture_degraded(self) -> None:
        code = self._codes[-1] if self._codes else "FALLBACK"
        with use_isolation_scope(self._event_scope()):
            sentry_sdk.capture_message(
                f"L0 session recovered on fallback {self._fallback_index} after {code}",
                level="warning", fingerprint=["l0", "degraded", code],
                tags={**self._tags(code), "l0.degraded": "true"},
                contexts={"l0": self._context()})

    # -- breadcrumbs for the recoveries ------------------------------------------------------

    def _on_retry(self, event: ObservabilityEvent) -> None:
        self._breadcrumb("retry", f"retry {event.get('attempt')}", level="warning",
                         attempt=event.get("attempt"), delay_ms=event.get("delayMs"),
                         network=event.get("isNetwork"))

    def _on_fallback(self, event: ObservabilityEvent) -> None:
        self._fallback_index = int(event.get("index") or 0)
        self._breadcrumb("fallback", f"fallback {self._fallback_index}", level="warning",
                         index=self._fallback_index, reason=event.get("reason"))

    def _on_timeout(self, event: ObservabilityEvent) -> None:
        kind = event.get("timeoutType")
        self._breadcrumb("timeout", f"{kind} timeout", level="warning", kind=kind,
                         elapsed_ms=event.get("elapsedMs"),
                         configured_ms=event.get("configuredMs"))

    def _on_guardrail(self, event: ObservabilityEvent) -> None:
        if event.get("passed") is not False:
            return
        violation = event.get("violation") or {}
        rule = event.get("ruleId")
        self._breadcrumb("guardrail", f"guardrail {rule}", level="warning", rule=rule,
                         severity=violation.get("severity"),
                         recoverable=violation.get("recoverable"),
                         streaming=event.get("streaming"))

    def _on_drift(self, event: ObservabilityEvent) -> None:
        if event.get("detected"):
            self._breadcrumb("drift", "drift detected", level="warning",
                             types=list(event.get("types") or ()), score=event.get("score"))

    def _on_abort(self, event: ObservabilityEvent) -> None:
        self._aborted = True
        self._breadcrumb("abort", "session aborted", token_count=event.get("tokenCount"),
                         content_length=event.get("contentLength"))


def _drop_l0_frame_variables(event: Any) -> None:
    """L0's own frames hold the stream's text in their local variables (the checkpoint, the
    parts): with ``include_local_variables`` on, Sentry would send them. Without permission
    to send text, those frames keep their lines but lose their variables."""
    for value in event.get("exception", {}).get("values", ()):
        for frame in (value.get("stacktrace") or {}).get("frames", ()):
            if str(frame.get("module") or "").startswith(("l0_core", "l0_openai", "l0_sentry")):
                frame.pop("vars", None)


def _usage_data(span: SpanHandle, usage: Mapping[str, Any] | None) -> None:
    """Token usage in Sentry's keys, from Chat Completions or Responses API usage."""
    if not usage:
        return
    pairs = (("gen_ai.usage.input_tokens", ("input_tokens", "prompt_tokens")),
             ("gen_ai.usage.output_tokens", ("output_tokens", "completion_tokens")),
             ("gen_ai.usage.total_tokens", ("total_tokens",)))
    for key, names in pairs:
        value = next((usage[n] for n in names if isinstance(usage.get(n), int)), None)
        if value is not None:
            span.set(key, value)


_HANDLERS: dict[ObservabilityEventType, Handler] = {
    T.SESSION_START: SentryObserver._on_session_start,
    T.STREAM_INIT: SentryObserver._on_stream_init,
    T.TIMEOUT_RESET: SentryObserver._on_first_token,
    T.ERROR: SentryObserver._on_error,
    T.COMPLETE: SentryObserver._on_complete,
    T.RETRY_ATTEMPT: SentryObserver._on_retry,
    T.FALLBACK_MODEL_SELECTED: SentryObserver._on_fallback,
    T.TIMEOUT_TRIGGERED: SentryObserver._on_timeout,
    T.GUARDRAIL_RULE_RESULT: SentryObserver._on_guardrail,
    T.DRIFT_CHECK_RESULT: SentryObserver._on_drift,
    T.ABORT_COMPLETED: SentryObserver._on_abort,
    T.SESSION_END: SentryObserver._on_session_end,
}

"""Events to JSON records and back.

Consumer events are recorded as what the consumer received; observability
events as their canonical fields (``event.to_dict()`` without ``type``, ``ts``,
``streamId`` and ``context``, which the record and the header hold), plus the
error an ``ERROR`` or ``SESSION_END`` carried for in-process listeners, so that
replay can hand ``on_error`` the same typed error. Only JSON values are
stored: anything else becomes ``{"$repr": repr(value)}``.

With ``record_text=False`` every piece of model output (token text, discarded
and completed text, checkpoints, tool-call arguments, data payloads) is kept
as ``{"len": n, "sha256": hex}`` instead.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import (
    Complete,
    Data,
    Discard,
    ErrorEvent,
    Event,
    Message,
    ObservabilityEvent,
    Progress,
    Token,
    ToolCall,
)
from l0_core.guardrails.rule import Violation

__all__ = ["decode_event", "encode_event", "encode_obs", "error_from_json", "error_to_json",
           "jsonable", "redact"]

# observability fields that hold model output (left out with record_text=False)
_TEXT_FIELDS = frozenset({"checkpoint", "text", "arguments", "overlapRemoved"})


def redact(value: Any) -> dict[str, Any]:
    """What ``record_text=False`` keeps of a piece of output: its length and hash."""
    text = value if isinstance(value, str) else repr(value)
    return {"len": len(text), "sha256": hashlib.sha256(text.encode("utf-8", "replace"))
            .hexdigest()}


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` with everything JSON cannot hold replaced (never pickled)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 32:
        return {"$repr": "..."}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, L0Error):
        return error_to_json(value)
    if isinstance(value, bytes):
        return {"$bytes": len(value)}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return jsonable(to_dict(), depth + 1)
        except Exception:
            pass
    return {"$repr": repr(value)[:1000]}


def error_to_json(error: BaseException) -> dict[str, Any]:
    """An error as JSON: the canonical shape, plus what rebuilds the same class."""
    if not isinstance(error, L0Error):
        return {"name": type(error).__name__, "code": ErrorCode.INTERNAL_ERROR.value,
                "message": str(error)}
    out = jsonable(error.to_json())
    out["status"] = error.status
    out["retryAfter"] = error.retry_after
    out["contentLength"] = error.content_length
    timeout = getattr(error, "timeout", None)
    if timeout is not None:
        out["timeout"] = timeout
    violations = getattr(error, "violations", None)
    if violations:
        out["violations"] = [v.to_dict() for v in violations if isinstance(v, Violation)]
    return out  # type: ignore[no-any-return]


def error_from_json(data: Any) -> L0Error:
    """The typed error :func:`error_to_json` described."""
    if not isinstance(data, Mapping):
        return L0Error(f"a recorded error: {data!r}", ErrorCode.INTERNAL_ERROR)
    try:
        code = ErrorCode(str(data.get("code")))
    except ValueError:
        code = ErrorCode.INTERNAL_ERROR
    kwargs: dict[str, Any] = {
        "status": data.get("status"), "retry_after": data.get("retryAfter"),
        "checkpoint": data.get("checkpoint") if isinstance(data.get("checkpoint"), str) else None,
        "token_count": data.get("tokenCount") or 0,
        "content_length": data.get("contentLength") or 0,
        "model_retry_count": data.get("modelRetryCount") or 0,
        "network_retry_count": data.get("networkRetryCount") or 0,
        "fallback_index": data.get("fallbackIndex") or 0,
        "metadata": data.get("metadata") if isinstance(data.get("metadata"), Mapping) else None,
        "context": data.get("context") if isinstance(data.get("context"), Mapping) else None,
    }
    error = L0Error(str(data.get("message", "")), code, **kwargs)
    if isinstance(data.get("timestamp"), (int, float)):
        error.timestamp = float(data["timestamp"])
    if "timeout" in data:
        error.timeout = data["timeout"]  # type: ignore[attr-defined]
    if data.get("violations"):
        error.violations = tuple(  # type: ignore[attr-defined]
            _violation(v) for v in data["violations"] if isinstance(v, Mapping))
    return error


def _violation(data: Mapping[str, Any]) -> Violation:
    return Violation(str(data.get("rule", "")), str(data.get("message", "")),
                     data.get("severity", "error"), bool(data.get("recoverable", True)),
                     data.get("position"), data.get("suggestion"))


# -- consumer events ------------------------------------------------------------------------------


def encode_event(event: Event, text: bool) -> tuple[str, Any]:
    """``(type, data)`` of a consumer event other than a token."""
    kind = event.type.value
    if isinstance(event, ErrorEvent):
        err = error_to_json(event.error) if event.error is not None else None
        if err is not None and not text and err.get("checkpoint"):
            err["checkpoint"] = redact(err["checkpoint"])
        return kind, {"error": err, "will_retry": event.will_retry,
                      "will_fallback": event.will_fallback}
    if isinstance(event, Discard):
        return kind, {"text": event.text if text else redact(event.text), "offset": event.offset,
                      "attempt": event.attempt, "reason": event.reason}
    if isinstance(event, Complete):
        return kind, {"text": event.text if text else redact(event.text),
                      "usage": jsonable(event.usage), "finish_reason": event.finish_reason}
    if isinstance(event, ToolCall):
        args = jsonable(event.arguments)
        return kind, {"id": event.id, "name": event.name,
                      "arguments": args if text else redact(repr(args)), "index": event.index}
    payload = jsonable(event.data) if text else redact(repr(event.data))
    if isinstance(event, Message):
        return kind, {"data": payload, "role": event.role}
    return kind, {"data": payload}


def decode_event(kind: str, data: Any) -> Event:
    """The consumer event a record holds (``RecordingError`` when it cannot be one)."""
    if kind == "token":
        if not isinstance(data, str):
            raise _no_text()
        return Token(data)
    if not isinstance(data, Mapping):
        raise _bad(kind)
    if kind == "error":
        return ErrorEvent(error_from_json(data.get("error")), bool(data.get("will_retry")),
                          bool(data.get("will_fallback")))
    if kind == "discard":
        return Discard(_text(data.get("text")), int(data.get("offset", 0)),
                       int(data.get("attempt", 0)), str(data.get("reason", "")))
    if kind == "complete":
        return Complete(_text(data.get("text")), data.get("usage"), data.get("finish_reason"))
    if kind == "tool_call":
        args = data.get("arguments")
        return ToolCall(str(data.get("id", "")), str(data.get("name", "")),
                        args if isinstance(args, Mapping) else {}, int(data.get("index", 0)))
    if kind == "message":
        return Message(data.get("data"), data.get("role"))
    if kind == "data":
        return Data(data.get("data"))
    if kind == "progress":
        return Progress(data.get("data"))
    raise _bad(kind)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _no_text()


def _no_text() -> L0Error:
    return L0Error("this session was recorded with record_text=False: its text cannot be "
                   "replayed (l0 sessions show still shows its timeline)",
                   ErrorCode.RECORDING_ERROR)


def _bad(kind: str) -> L0Error:
    return L0Error(f"a recorded {kind!r} event is malformed", ErrorCode.RECORDING_ERROR)


# -- observability events ------------------------------------------------------------------------


def encode_obs(event: ObservabilityEvent, text: bool) -> dict[str, Any]:
    """The fields of an observability event, ready for JSON."""
    out: dict[str, Any] = {}
    for key, value in event.meta.items():
        if key.startswith("_"):
            if key == "_error" and isinstance(value, BaseException):
                err = error_to_json(value)
                if not text and err.get("checkpoint"):
                    err["checkpoint"] = redact(err["checkpoint"])
                out["_error"] = err
            continue  # the State, the Violation: rebuilt by replay
        if not text and key in _TEXT_FIELDS and value:
            out[key] = redact(value)
        else:
            out[key] = jsonable(value)
    return out

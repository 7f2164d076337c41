"""Events to JSON records and back.

Consumer events are recorded as what the consumer received; observability
events as their canonical fields (``event.to_dict()`` without ``type``, ``ts``,
``streamId`` and ``context``, which the record and the header hold), plus the
error an ``ERROR`` or ``SESSION_END`` carried for in-process listeners, so that
replay can hand ``on_error`` the same typed error. Only JSON values are
stored: anything else becomes ``{"$repr": repr(value)}``.

With ``record_text=False`` every piece of model output (token text, discarded
and completed text, checkpoints, tool-call arguments, data payloads) is kept
as ``{"len": n, "sha256": hex}`` instead; so is every other string that may
quote the prompt or the output: error and violation messages, previews,
reasons, the values of the user's context and of errors' metadata. Only the
strings of :data:`_SAFE_KEYS` (rule names, codes, severities...) stay.

``CHECKPOINT_SAVED`` keeps only its ``tokenCount``: the checkpoint is the text
of the first ``tokenCount`` tokens, which replay rebuilds (storing it would
store the output again at every checkpoint).

Bytes are kept as ``{"$bytes": base64}`` (their content, not only their size).
"""

from __future__ import annotations

import base64
import binascii
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
from l0_core.events import ObservabilityEventType as T
from l0_core.guardrails.rule import Violation

__all__ = ["approx_size", "decode_event", "encode_event", "encode_obs", "error_from_json",
           "error_to_json", "jsonable", "redact", "scrub", "violation_from_json"]

# observability fields that hold model output (left out whole with record_text=False)
_TEXT_FIELDS = frozenset({"checkpoint", "text", "arguments", "overlapRemoved", "contentPreview",
                          "content", "errors", "partial"})
# the fields whose strings are names, codes or enumerations, kept with record_text=False;
# every other string (messages, reasons, previews, context values) is kept as a hash
_SAFE_KEYS = frozenset({
    "rule", "severity", "code", "errorCode", "name", "type", "kind", "phase", "model",
    "timeoutType", "finishReason", "finish_reason", "category", "role", "adapter", "id",
    "types", "errorCategory", "source", "mode", "strategy", "method", "format", "guardrails",
    "fromModel", "toModel", "provider", "factory", "streamId", "mime_type", "class",
})


def redact(value: Any) -> dict[str, Any]:
    """What ``record_text=False`` keeps of a piece of output: its length and hash."""
    text = value if isinstance(value, str) else repr(value)
    return {"len": len(text), "sha256": hashlib.sha256(text.encode("utf-8", "replace"))
            .hexdigest()}


def approx_size(value: Any, depth: int = 0) -> int:
    """About how many bytes a JSON value takes (its strings' lengths; 8 per other item)."""
    if isinstance(value, str):
        return len(value)
    if depth > 32:
        return 8
    if isinstance(value, Mapping):
        return sum(len(str(k)) + approx_size(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return sum(approx_size(v, depth + 1) for v in value) + 8
    return 8


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
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return jsonable(to_dict(), depth + 1)
        except Exception:
            pass
    return {"$repr": repr(value)[:1000]}


def scrub(value: Any, key: str | None = None) -> Any:
    """A JSON value with every string but those under :data:`_SAFE_KEYS` replaced by
    its length and hash (what ``record_text=False`` keeps of messages and context)."""
    if isinstance(value, str):
        return value if key in _SAFE_KEYS else redact(value)
    if isinstance(value, Mapping):
        if key in _TEXT_FIELDS and value:
            return redact(repr(value))
        return {k: scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, key) for v in value]
    return value


def error_to_json(error: BaseException, text: bool = True) -> dict[str, Any]:
    """An error as JSON: the canonical shape, plus what rebuilds the same class
    (its message, context and metadata as hashes when ``text`` is false)."""
    if not isinstance(error, L0Error):
        out: dict[str, Any] = {"name": type(error).__name__,
                               "code": ErrorCode.INTERNAL_ERROR.value, "message": str(error)}
        return out if text else scrub(out)
    out = jsonable(error.to_json())
    out["status"] = error.status
    out["retryAfter"] = error.retry_after
    out["contentLength"] = error.content_length
    timeout = getattr(error, "timeout", None)
    if timeout is not None:
        out["timeout"] = timeout
    violations = getattr(error, "violations", None)
    if violations:
        out["violations"] = [jsonable(v.to_dict()) for v in violations
                             if isinstance(v, Violation)]
    if not text:
        checkpoint = out.pop("checkpoint", None)
        out = scrub(out)
        out["checkpoint"] = redact(checkpoint) if checkpoint else checkpoint
    return out


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
            violation_from_json(v) for v in data["violations"] if isinstance(v, Mapping))
    return error


def violation_from_json(data: Mapping[str, Any]) -> Violation:
    """The guardrail violation a recorded ``violation`` dict describes."""
    position = data.get("position")
    suggestion = data.get("suggestion")
    return Violation(str(data.get("rule", "")), str(data.get("message", "")),
                     str(data.get("severity", "error")),  # type: ignore[arg-type]
                     bool(data.get("recoverable", True)),
                     position if type(position) is int else None,
                     suggestion if isinstance(suggestion, str) else None)


# -- consumer events ------------------------------------------------------------------------------


def encode_event(event: Event, text: bool) -> tuple[str, Any]:
    """``(type, data)`` of a consumer event other than a token."""
    kind = event.type.value
    if isinstance(event, ErrorEvent):
        err = error_to_json(event.error, text) if event.error is not None else None
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
    if type(event) is not Data and isinstance(event, Data):  # an Image, an Audio...
        fields = {name: jsonable(getattr(event, name, None)) for name in _extra_slots(event)}
        return kind, {"data": payload, "class": type(event).__name__,
                      "fields": fields if text else scrub(fields)}
    return kind, {"data": payload}


def _extra_slots(event: Event) -> list[str]:
    """The fields a subclass of Data adds (a media event's mime type, partial, id...)."""
    return [name for cls in type(event).__mro__ if issubclass(cls, Data) and cls is not Data
            for name in getattr(cls, "__slots__", ())]


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
        return Discard(_text(data.get("text")), _int(kind, data, "offset"),
                       _int(kind, data, "attempt"), str(data.get("reason", "")))
    if kind == "complete":
        return Complete(_text(data.get("text")), data.get("usage"), data.get("finish_reason"))
    if kind == "tool_call":
        args = data.get("arguments")
        return ToolCall(str(data.get("id", "")), str(data.get("name", "")),
                        args if isinstance(args, Mapping) else {}, _int(kind, data, "index"))
    if kind == "message":
        return Message(_restore(data.get("data")), data.get("role"))
    if kind == "data":
        return _data(data)
    if kind == "progress":
        return Progress(_restore(data.get("data")))
    raise _bad(kind)


def _data(data: Mapping[str, Any]) -> Data:
    """A recorded data event, of its own class when it was a subclass (Image, Audio)."""
    payload = _restore(data.get("data"))
    from l0_core import events

    cls = getattr(events, str(data.get("class")), None) if "class" in data else None
    if not (isinstance(cls, type) and issubclass(cls, Data)):
        return Data(payload)
    event = object.__new__(cls)
    event.data = payload
    fields = data.get("fields")
    names = _extra_slots(event)
    for name in names:  # every field set (a missing one None), never a field it lacks
        value = fields.get(name) if isinstance(fields, Mapping) else None
        object.__setattr__(event, name, _restore(value))
    return event


def _restore(value: Any, depth: int = 0) -> Any:
    """A recorded payload with its ``{"$bytes": base64}`` values bytes again."""
    if isinstance(value, list) and depth < 32:
        return [_restore(v, depth + 1) for v in value]
    if not isinstance(value, dict) or depth >= 32:
        return value
    if len(value) == 1 and isinstance(value.get("$bytes"), str):
        try:
            return base64.b64decode(value["$bytes"], validate=True)
        except (binascii.Error, ValueError):
            raise L0Error("a recorded payload holds bytes that are not base64",
                          ErrorCode.RECORDING_ERROR) from None
    return {k: _restore(v, depth + 1) for k, v in value.items()}


def _int(kind: str, data: Mapping[str, Any], key: str) -> int:
    """``data[key]`` as a count or an index (0 when missing; RecordingError when not one)."""
    value = data.get(key, 0)
    if type(value) is int and value >= 0:
        return value
    raise L0Error(f"a recorded {kind!r} event is malformed: {key} is {value!r}, not a count",
                  ErrorCode.RECORDING_ERROR)


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
                out["_error"] = error_to_json(value, text)
            continue  # the State, the Violation: rebuilt by replay
        if key == "checkpoint" and event.type is T.CHECKPOINT_SAVED:
            continue  # the text of the first tokenCount tokens: rebuilt by replay
        if text:
            out[key] = jsonable(value)
        elif key in _TEXT_FIELDS and value:
            out[key] = redact(value)
        else:
            out[key] = scrub(jsonable(value), key)
    return out

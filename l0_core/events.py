"""Events: what a consumer iterates, and what observers see.

Consumer events are small ``__slots__`` objects, one class per type, all
answering the same questions (``is_token``, ``text``, ``data``, ``error``...);
a token event is built once per token, so it carries nothing else.

Observability events (:class:`ObservabilityEvent`) follow the canonical
vocabulary (SESSION_START ... SESSION_SUMMARY). They are built only when
somebody listens.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from l0_core.errors import L0Error

__all__ = [
    "Audio",
    "Complete",
    "Data",
    "Discard",
    "ErrorEvent",
    "Event",
    "EventType",
    "Image",
    "Media",
    "Message",
    "ObservabilityEvent",
    "ObservabilityEventType",
    "Progress",
    "Token",
    "ToolCall",
]


class EventType(enum.StrEnum):
    """Consumer event types. ``discard`` is L0's addition (see :class:`Discard`)."""

    TOKEN = "token"
    MESSAGE = "message"
    DATA = "data"
    PROGRESS = "progress"
    TOOL_CALL = "tool_call"
    ERROR = "error"
    COMPLETE = "complete"
    DISCARD = "discard"


class Event:
    """Base of every consumer event; subclasses fill in what they carry."""

    __slots__ = ()
    type: ClassVar[EventType]
    is_token: ClassVar[bool] = False
    is_message: ClassVar[bool] = False
    is_data: ClassVar[bool] = False
    is_progress: ClassVar[bool] = False
    is_tool_call: ClassVar[bool] = False
    is_error: ClassVar[bool] = False
    is_complete: ClassVar[bool] = False
    is_discard: ClassVar[bool] = False
    text: str | None = None
    data: Any = None
    error: L0Error | None = None
    usage: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for cls in type(self).__mro__
            for name in getattr(cls, "__slots__", ())
        )
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            getattr(self, n) == getattr(other, n)
            for cls in type(self).__mro__
            for n in getattr(cls, "__slots__", ())
        )

    __hash__ = None  # type: ignore[assignment]


class Token(Event):
    """A piece of text from the model."""

    __slots__ = ("text",)
    type = EventType.TOKEN
    is_token = True

    def __init__(self, text: str) -> None:
        self.text = text


class Message(Event):
    """A structured message from the provider (``data`` holds it; ``role`` if any)."""

    __slots__ = ("data", "role")
    type = EventType.MESSAGE
    is_message = True

    def __init__(self, data: Any, role: str | None = None) -> None:
        self.data = data
        self.role = role


class Data(Event):
    """A non-text payload (an image, audio, a JSON object...)."""

    __slots__ = ("data",)
    type = EventType.DATA
    is_data = True

    def __init__(self, data: Any) -> None:
        self.data = data


class Media(Data):
    """A piece of media from the model: ``data`` is its content, as ``bytes`` or as a base64
    ``str`` (what providers stream; decoded only when ``bytes`` is read).

    ``partial`` marks a preview (a partial image) that a later event replaces; ``index``
    orders the pieces of one item, ``id`` names the item. ``state.data_outputs`` keeps every
    piece that is not partial. Built once per provider chunk, hence ``__slots__``.
    """

    __slots__ = ("id", "index", "metadata", "mime_type", "partial")
    kind: ClassVar[str] = "media"

    def __init__(
        self,
        data: bytes | str,
        mime_type: str,
        *,
        partial: bool = False,
        index: int = 0,
        id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.data = data
        self.mime_type = mime_type
        self.partial = partial
        self.index = index
        self.id = id
        self.metadata = metadata

    @property
    def bytes(self) -> bytes:
        """The content as bytes (base64 decoded when it came as text)."""
        data = self.data
        if isinstance(data, str):
            import base64

            return base64.b64decode(data)
        return bytes(data)

    @property
    def base64(self) -> str:
        """The content as base64 text."""
        data = self.data
        if isinstance(data, str):
            return data
        import base64

        return base64.b64encode(data).decode("ascii")

    def __repr__(self) -> str:
        size = len(self.data)
        shown = f"<{size} base64 chars>" if isinstance(self.data, str) else f"<{size} bytes>"
        return (f"{type(self).__name__}({shown}, mime_type={self.mime_type!r}, "
                f"partial={self.partial}, index={self.index}, id={self.id!r})")


class Image(Media):
    """An image, or with ``partial=True`` a preview of one (``index`` counts previews)."""

    __slots__ = ()
    kind = "image"


class Audio(Media):
    """A piece of audio; the pieces of one answer (same ``id``) concatenate in order."""

    __slots__ = ()
    kind = "audio"


class Progress(Event):
    """Progress reported by the provider (``data`` is provider-defined)."""

    __slots__ = ("data",)
    type = EventType.PROGRESS
    is_progress = True

    def __init__(self, data: Any) -> None:
        self.data = data


class ToolCall(Event):
    """One complete tool call: ``id``, ``name`` and parsed ``arguments``."""

    __slots__ = ("arguments", "id", "index", "name")
    type = EventType.TOOL_CALL
    is_tool_call = True

    def __init__(
        self, id: str, name: str, arguments: Mapping[str, Any], index: int = 0
    ) -> None:
        self.id = id
        self.name = name
        self.arguments = arguments
        self.index = index

    @property
    def data(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "index": self.index}


class ErrorEvent(Event):
    """An error the consumer should know about; the session may still recover.

    ``will_retry`` / ``will_fallback`` say what L0 does next. When neither is
    true the session ends by raising ``error``.
    """

    __slots__ = ("error", "will_fallback", "will_retry")
    type = EventType.ERROR
    is_error = True

    def __init__(self, error: L0Error, will_retry: bool, will_fallback: bool) -> None:
        self.error = error
        self.will_retry = will_retry
        self.will_fallback = will_fallback


class Discard(Event):
    """Forget the text this attempt delivered: ``length`` characters from ``offset``.

    Sent when an attempt that already yielded tokens is abandoned and its text
    will not be part of the result. ``text`` is the discarded text. After it the
    text the consumer should keep is exactly ``stream.state.content``.
    """

    __slots__ = ("attempt", "offset", "reason", "text")
    type = EventType.DISCARD
    is_discard = True

    def __init__(self, text: str, offset: int, attempt: int, reason: str) -> None:
        self.text = text
        self.offset = offset
        self.attempt = attempt
        self.reason = reason

    text: str

    @property
    def length(self) -> int:
        return len(self.text)


class Complete(Event):
    """The session finished; ``text`` is the whole delivered content."""

    __slots__ = ("finish_reason", "text", "usage")
    type = EventType.COMPLETE
    is_complete = True

    def __init__(
        self, text: str, usage: Mapping[str, Any] | None, finish_reason: str | None
    ) -> None:
        self.text = text
        self.usage = usage
        self.finish_reason = finish_reason


class ObservabilityEventType(enum.StrEnum):
    """The canonical observability vocabulary, plus L0's additions at the end."""

    SESSION_START = "SESSION_START"
    ATTEMPT_START = "ATTEMPT_START"
    SESSION_END = "SESSION_END"
    SESSION_SUMMARY = "SESSION_SUMMARY"
    STREAM_INIT = "STREAM_INIT"
    STREAM_READY = "STREAM_READY"
    ADAPTER_DETECTED = "ADAPTER_DETECTED"
    ADAPTER_WRAP_START = "ADAPTER_WRAP_START"
    ADAPTER_WRAP_END = "ADAPTER_WRAP_END"
    TIMEOUT_START = "TIMEOUT_START"
    TIMEOUT_RESET = "TIMEOUT_RESET"
    TIMEOUT_TRIGGERED = "TIMEOUT_TRIGGERED"
    NETWORK_ERROR = "NETWORK_ERROR"
    NETWORK_RECOVERY = "NETWORK_RECOVERY"
    CONNECTION_DROPPED = "CONNECTION_DROPPED"
    CONNECTION_RESTORED = "CONNECTION_RESTORED"
    ABORT_REQUESTED = "ABORT_REQUESTED"
    ABORT_COMPLETED = "ABORT_COMPLETED"
    TOOL_REQUESTED = "TOOL_REQUESTED"
    TOOL_START = "TOOL_START"
    TOOL_RESULT = "TOOL_RESULT"
    TOOL_ERROR = "TOOL_ERROR"
    TOOL_COMPLETED = "TOOL_COMPLETED"
    GUARDRAIL_PHASE_START = "GUARDRAIL_PHASE_START"
    GUARDRAIL_PHASE_END = "GUARDRAIL_PHASE_END"
    GUARDRAIL_RULE_START = "GUARDRAIL_RULE_START"
    GUARDRAIL_RULE_RESULT = "GUARDRAIL_RULE_RESULT"
    GUARDRAIL_RULE_END = "GUARDRAIL_RULE_END"
    GUARDRAIL_CALLBACK_START = "GUARDRAIL_CALLBACK_START"
    GUARDRAIL_CALLBACK_END = "GUARDRAIL_CALLBACK_END"
    DRIFT_CHECK_RESULT = "DRIFT_CHECK_RESULT"
    DRIFT_CHECK_SKIPPED = "DRIFT_CHECK_SKIPPED"
    CHECKPOINT_SAVED = "CHECKPOINT_SAVED"
    RESUME_START = "RESUME_START"
    CONTINUATION_START = "CONTINUATION_START"
    RETRY_START = "RETRY_START"
    RETRY_ATTEMPT = "RETRY_ATTEMPT"
    RETRY_END = "RETRY_END"
    RETRY_GIVE_UP = "RETRY_GIVE_UP"
    RETRY_FN_START = "RETRY_FN_START"
    RETRY_FN_RESULT = "RETRY_FN_RESULT"
    RETRY_FN_ERROR = "RETRY_FN_ERROR"
    FALLBACK_START = "FALLBACK_START"
    FALLBACK_MODEL_SELECTED = "FALLBACK_MODEL_SELECTED"
    FALLBACK_END = "FALLBACK_END"
    STRUCTURED_PARSE_START = "STRUCTURED_PARSE_START"
    STRUCTURED_PARSE_END = "STRUCTURED_PARSE_END"
    STRUCTURED_PARSE_ERROR = "STRUCTURED_PARSE_ERROR"
    STRUCTURED_VALIDATION_START = "STRUCTURED_VALIDATION_START"
    STRUCTURED_VALIDATION_END = "STRUCTURED_VALIDATION_END"
    STRUCTURED_VALIDATION_ERROR = "STRUCTURED_VALIDATION_ERROR"
    STRUCTURED_AUTO_CORRECT_START = "STRUCTURED_AUTO_CORRECT_START"
    STRUCTURED_AUTO_CORRECT_END = "STRUCTURED_AUTO_CORRECT_END"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    # L0 additions
    DISCARD = "DISCARD"
    FINISH_REASON = "FINISH_REASON"
    TOKEN = "TOKEN"  # one per token, and only to an ``on_event`` listener
    DRIFT_CHECK_START = "DRIFT_CHECK_START"
    DRIFT_CHECK_END = "DRIFT_CHECK_END"
    CONTEXT_RESTORED = "CONTEXT_RESTORED"  # a window chunk that drifted runs again, widened
    # many streams at once (l0_core.multi): the operation's own events; its child sessions
    # carry the operation's id as ``context["parentId"]``
    CONSENSUS_START = "CONSENSUS_START"
    CONSENSUS_STREAM_START = "CONSENSUS_STREAM_START"
    CONSENSUS_STREAM_END = "CONSENSUS_STREAM_END"
    CONSENSUS_OUTPUT_COLLECTED = "CONSENSUS_OUTPUT_COLLECTED"
    CONSENSUS_ANALYSIS = "CONSENSUS_ANALYSIS"
    CONSENSUS_RESOLUTION = "CONSENSUS_RESOLUTION"
    CONSENSUS_END = "CONSENSUS_END"
    PARALLEL_START = "PARALLEL_START"
    PARALLEL_END = "PARALLEL_END"
    RACE_START = "RACE_START"
    RACE_WINNER = "RACE_WINNER"
    RACE_END = "RACE_END"
    HEDGE_START = "HEDGE_START"
    HEDGE_BACKUP_START = "HEDGE_BACKUP_START"
    HEDGE_END = "HEDGE_END"
    PIPELINE_START = "PIPELINE_START"
    PIPELINE_STEP_START = "PIPELINE_STEP_START"
    PIPELINE_STEP_END = "PIPELINE_STEP_END"
    PIPELINE_END = "PIPELINE_END"
    MODEL_SKIPPED = "MODEL_SKIPPED"  # l0.Cooldowns: a cooling model left out of a session
    MODEL_COOLDOWN = "MODEL_COOLDOWN"  # l0.Cooldowns: a model started cooling


class ObservabilityEvent:
    """One observability event: ``type``, ``ts`` (ms), ``stream_id``, ``context``, ``meta``.

    ``ts`` is wall-clock milliseconds taken from a monotonic clock anchored at
    session start, so the timestamps of one session never go backwards.
    ``context`` is the user's context, deep-copied once per session and
    read-only.
    """

    __slots__ = ("context", "meta", "stream_id", "ts", "type")

    def __init__(
        self,
        type: ObservabilityEventType,
        ts: float,
        stream_id: str,
        context: Mapping[str, Any],
        meta: dict[str, Any],
    ) -> None:
        self.type = type
        self.ts = ts
        self.stream_id = stream_id
        self.context = context
        self.meta = meta

    def __getitem__(self, key: str) -> Any:
        return self.meta[key]

    # The consumer-event questions, so that one ``on_event`` handler can follow the
    # text and the outcome: ``is_token`` / ``text``, ``is_error`` / ``error``,
    # ``is_complete``.

    @property
    def is_token(self) -> bool:
        return self.type is ObservabilityEventType.TOKEN

    @property
    def is_error(self) -> bool:
        return self.type is ObservabilityEventType.ERROR

    @property
    def is_complete(self) -> bool:
        return self.type is ObservabilityEventType.COMPLETE

    @property
    def text(self) -> str | None:
        """The token's text (``TOKEN`` events), else ``None``."""
        value = self.meta.get("text")
        return value if isinstance(value, str) else None

    @property
    def error(self) -> L0Error | None:
        """The error (``ERROR`` events), else ``None``."""
        value = self.meta.get("_error")
        return value if isinstance(value, BaseException) else None  # type: ignore[return-value]

    def get(self, key: str, default: Any = None) -> Any:
        return self.meta.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON shape: ``type``, ``ts``, ``streamId``, ``context`` and the fields."""
        from l0_core.context import thaw

        return {
            "type": self.type.value,
            "ts": self.ts,
            "streamId": self.stream_id,
            "context": thaw(self.context),
            # keys starting with "_" hold Python objects (the L0Error, the State) for
            # in-process listeners; they are not part of the serialised shape
            **{k: v for k, v in self.meta.items() if not k.startswith("_")},
        }

    def __repr__(self) -> str:
        return f"ObservabilityEvent({self.type.value}, {self.meta!r})"

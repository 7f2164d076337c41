"""Stream adapters for the OpenAI SDK.

``openai``
    Chat Completions: ``openai.types.chat.ChatCompletionChunk`` items. Text
    deltas of the selected choice (adapter option ``choice_index``, default 0)
    are returned as ``str`` (the per-token fast path); tool calls are assembled
    from their streamed fragments and emitted once per call, as
    :class:`l0_core.ToolCall` events, when the choice's ``finish_reason``
    arrives. ``usage`` (``stream_options={"include_usage": True}``) and the
    finish reason are reported by ``finish()``; ``content_filter`` and a refusal
    raise ``CONTENT_POLICY``; a stream without a finish reason is
    ``INCOMPLETE``.

``openai-responses``
    Responses API stream events (``response.output_text.delta``,
    ``response.output_item.done``, ``response.completed``,
    ``response.incomplete``, ``response.failed``, ``error``). Function calls are
    emitted as :class:`l0_core.ToolCall` events when their output item is done.
    Image generation: each ``response.image_generation_call.partial_image`` is an
    :class:`l0_core.Image` with ``partial=True``, the finished ``image_generation_call``
    output item the final :class:`l0_core.Image`; ``in_progress`` / ``generating`` /
    ``completed`` of the call are :class:`l0_core.Progress` events.

The Chat Completions session is the core's :class:`~l0_core.runtime.chat_chunks.
ChatChunkSession` (LiteLLM streams the same shape). Tool-call arguments that are not a JSON
object raise an :class:`~l0_core.L0Error` (``INCOMPLETE`` when the model stopped at its
length limit, ``UNKNOWN_ERROR`` otherwise, both retried); they never become ``{}``. An
empty arguments string is a call without arguments (``{}``).

The SDK is not imported: items are recognised by their class and module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import Image, Progress, ToolCall
from l0_core.runtime.adapters import AdapterSession, FeedResult, Finish
from l0_core.runtime.chat_chunks import ChatChunkSession, dump_fields, parse_arguments
from l0_openai.errors import error_from_fields

__all__ = ["ChatCompletionsAdapter", "ResponsesAdapter", "parse_arguments"]


class ChatCompletionsAdapter:
    """Adapter ``openai``: Chat Completions ``ChatCompletionChunk`` streams.

    Options (``l0.run(adapter_options=...)``): ``choice_index`` (default 0), the
    choice to read when the request asks for ``n > 1``; ``audio_format`` (default
    ``"pcm16"``, what OpenAI streams), the ``audio.format`` of the request, for the MIME
    type of :class:`l0_core.Audio` pieces.
    """

    name = "openai"

    def detect(self, item: Any) -> bool:
        cls = type(item)
        return cls.__name__ == "ChatCompletionChunk" and cls.__module__.startswith("openai.")

    def open(self, options: Mapping[str, Any] | None = None) -> AdapterSession:
        index, audio_format = 0, "pcm16"
        if options:
            index = int(options.get("choice_index", 0))
            audio_format = str(options.get("audio_format", "pcm16"))
        return ChatChunkSession(index, provider="OpenAI", audio_format=audio_format)


_TEXT_DELTA = "response.output_text.delta"


_IMAGE_CALL = "response.image_generation_call."


def _image_mime(output_format: str | None) -> str:
    fmt = output_format or "png"
    return "image/svg+xml" if fmt == "svg" else f"image/{fmt}"


def _image_event(item: Any, step: str) -> Image | Progress:
    """A partial image, or the progress of an image generation call."""
    if step == "partial_image":
        return Image(item.partial_image_b64, _image_mime(getattr(item, "output_format", None)),
                     partial=True, index=int(item.partial_image_index), id=item.item_id)
    return Progress({"kind": "image", "status": step, "id": getattr(item, "item_id", None),
                     "output_index": getattr(item, "output_index", None)})


def _final_image(output: Any) -> Image | None:
    result = getattr(output, "result", None)
    if not result:
        error = getattr(output, "error", None)
        if getattr(output, "status", None) == "failed" or error is not None:
            raise error_from_fields(error or {}, where="image_generation_call",
                                    default=ErrorCode.SERVER_ERROR)
        return None
    return Image(result, _image_mime(getattr(output, "output_format", None)), id=output.id,
                 metadata={k: v for k in ("size", "quality", "revised_prompt")
                           if (v := getattr(output, k, None)) is not None} or None)


class _ResponsesSession:
    """One attempt over Responses API stream events."""

    __slots__ = ("_finish", "_refusal", "_tools", "_usage")

    def __init__(self) -> None:
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._refusal: list[str] = []
        self._tools = 0

    def feed(self, item: Any) -> FeedResult:
        kind = item.type
        if kind == _TEXT_DELTA:
            delta: str = item.delta
            return delta
        return self._feed_slow(item, kind)

    def _feed_slow(self, item: Any, kind: str) -> FeedResult:
        if kind.startswith(_IMAGE_CALL):
            return _image_event(item, kind[len(_IMAGE_CALL):])
        if kind == "response.output_item.done":
            output = item.item
            if getattr(output, "type", None) == "image_generation_call":
                return _final_image(output)
            if getattr(output, "type", None) == "function_call":
                self._tools += 1
                call_id = getattr(output, "call_id", None) or getattr(output, "id", "") or ""
                name = output.name
                args = parse_arguments(output.arguments or "", name=name, call_id=call_id)
                return ToolCall(call_id, name, args, int(item.output_index))
            return None
        if kind == "response.refusal.delta":
            self._refusal.append(item.delta)
            return None
        if kind == "response.completed":
            response = item.response
            self._usage = dump_fields(getattr(response, "usage", None))
            self._finish = "tool_calls" if self._tools else "stop"
            return None
        if kind == "response.incomplete":
            response = item.response
            self._usage = dump_fields(getattr(response, "usage", None))
            details = getattr(response, "incomplete_details", None)
            reason = getattr(details, "reason", None)
            if reason == "content_filter":
                raise L0Error(
                    "OpenAI stopped the response: the content filter flagged it "
                    "(response.incomplete, reason content_filter)",
                    ErrorCode.CONTENT_POLICY,
                    metadata={"incompleteReason": reason},
                )
            self._finish = "length" if reason == "max_output_tokens" else (reason or "incomplete")
            return None
        if kind == "response.failed":
            error = getattr(item.response, "error", None)
            raise error_from_fields(error or {}, where="response.failed",
                                    default=ErrorCode.SERVER_ERROR)
        if kind == "error":
            fields = getattr(item, "error", None) or item
            raise error_from_fields(fields, where="stream error event",
                                    default=ErrorCode.SERVER_ERROR)
        return None

    def finish(self) -> Finish:
        if self._finish is None:
            raise L0Error(
                "the OpenAI Responses stream ended without response.completed: the output may "
                "be cut",
                ErrorCode.INCOMPLETE,
            )
        if self._refusal:
            refusal = "".join(self._refusal)
            raise L0Error(
                f"the model refused: {refusal}",
                ErrorCode.CONTENT_POLICY,
                metadata={"refusal": refusal},
            )
        return Finish(self._finish, self._usage)


class ResponsesAdapter:
    """Adapter ``openai-responses``: Responses API stream events."""

    name = "openai-responses"

    def detect(self, item: Any) -> bool:
        module = type(item).__module__
        if not module.startswith("openai.types.responses"):
            return False
        kind = getattr(item, "type", None)
        return isinstance(kind, str) and (kind.startswith("response.") or kind == "error")

    def open(self, options: Mapping[str, Any] | None = None) -> AdapterSession:
        return _ResponsesSession()

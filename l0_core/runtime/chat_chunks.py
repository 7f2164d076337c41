"""OpenAI-shaped chat chunks: the wire format that OpenAI, LiteLLM and many compatible
servers stream (``choices[i].delta`` with ``content`` and ``tool_calls`` fragments, a
``finish_reason``, ``usage``).

:class:`ChatChunkSession` is the adapter session provider plugins build on: text deltas of
the selected choice are the per-token fast path; tool calls are assembled from their
fragments and emitted with complete parsed arguments when the choice finishes; ``usage``
and the finish reason are reported at the end; ``content_filter`` raises
``CONTENT_POLICY``, a refusal too, and a stream without a finish reason is ``INCOMPLETE``.
Streamed audio output (``modalities=["text", "audio"]``: ``delta.audio`` with base64
``data`` and a ``transcript``) becomes :class:`~l0_core.events.Audio` pieces, and its
transcript is the text. Audio chunks carry no ``content``, so they never reach the fast path.
Tool-call arguments that are not a JSON object (``NaN`` and ``Infinity`` are not JSON) raise
an :class:`~l0_core.L0Error` (``INCOMPLETE`` when the model stopped at its length limit,
``UNKNOWN_ERROR`` otherwise, both retried; ``INVALID_STREAM``, not retried, when they are
nested too deeply for Python to parse); they never become ``{}``. No provider SDK is imported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import Audio, Event, Token, ToolCall
from l0_core.runtime.adapters import FeedResult, Finish

__all__ = ["AUDIO_MIME_TYPES", "ChatChunkSession", "ToolBuffer", "dump_fields",
           "parse_arguments"]

#: the MIME type of each ``audio.format`` a chat request can ask for (OpenAI streams pcm16)
AUDIO_MIME_TYPES = {"pcm16": "audio/pcm", "wav": "audio/wav", "mp3": "audio/mpeg",
                    "opus": "audio/opus", "flac": "audio/flac", "aac": "audio/aac"}


def dump_fields(obj: Any) -> Mapping[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        result: Mapping[str, Any] = dump(exclude_none=True)
        return result
    return dict(vars(obj))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


_STRICT = json.JSONDecoder(parse_constant=_not_json)  # NaN and Infinity are not JSON


def parse_arguments(
    raw: str, *, name: str, call_id: str, finish_reason: str | None = None
) -> dict[str, Any]:
    """Parse a tool call's JSON arguments; a clear :class:`L0Error` when they are not
    a JSON object (an empty string is ``{}``)."""
    if not raw.strip():
        return {}
    try:
        parsed = _STRICT.decode(raw)
    except ValueError as exc:
        problem = f"are not valid JSON ({exc})"
    except RecursionError:  # nested deeper than Python's recursion limit: never a real call
        shown = raw if len(raw) <= 200 else raw[:200] + "..."
        raise L0Error(
            f"the arguments of tool call {name!r} ({call_id}) are nested too deeply to "
            f"parse: {shown!r}", ErrorCode.INVALID_STREAM,
            metadata={"toolCallId": call_id, "toolName": name, "arguments": raw,
                      "finishReason": finish_reason}) from None
    else:
        if isinstance(parsed, dict):
            return parsed
        problem = f"are a JSON {type(parsed).__name__}, not an object"
    cut = finish_reason == "length"
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    raise L0Error(
        f"the arguments of tool call {name!r} ({call_id}) {problem}"
        f"{' - the model stopped at its length limit' if cut else ''}: {shown!r}",
        ErrorCode.INCOMPLETE if cut else ErrorCode.UNKNOWN_ERROR,
        metadata={"toolCallId": call_id, "toolName": name, "arguments": raw,
                  "finishReason": finish_reason},
    )


class ToolBuffer:
    __slots__ = ("args", "id", "index", "name")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id = ""
        self.name = ""
        self.args: list[str] = []


class ChatChunkSession:
    """One attempt over OpenAI-shaped chat chunks; ``provider`` names the source in errors."""

    __slots__ = ("_audio", "_audio_id", "_audio_mime", "_choice", "_finish", "_provider",
                 "_refusal", "_tools", "_usage")

    def __init__(self, choice_index: int = 0, provider: str = "OpenAI",
                 audio_format: str = "pcm16") -> None:
        self._choice = choice_index
        self._provider = provider
        self._audio_mime = AUDIO_MIME_TYPES.get(audio_format, f"audio/{audio_format}")
        self._audio = 0  # audio pieces so far
        self._audio_id: str | None = None
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._tools: dict[int, ToolBuffer] = {}
        self._refusal: list[str] = []

    def feed(self, item: Any) -> FeedResult:
        # The fast path: one choice with text and nothing else that matters (a refusal or
        # a function call comes with ``content`` None; usage, when a chunk with a choice
        # carries it, comes with the finish reason).
        try:
            choices = item.choices
            if len(choices) == 1:
                choice = choices[0]
                delta = choice.delta
                content = delta.content
                if (
                    content
                    and choice.finish_reason is None
                    and choice.index == self._choice
                    and delta.tool_calls is None
                ):
                    text: str = content
                    return text
        except (AttributeError, TypeError):  # an unusual chunk (a missing delta...)
            pass
        return self._feed_slow(item)

    def _feed_slow(self, item: Any) -> FeedResult:
        usage = getattr(item, "usage", None)
        if usage is not None:
            self._usage = dump_fields(usage)
        text: str | None = None
        events: list[Event] = []
        for choice in item.choices or ():
            if choice.index != self._choice:
                continue
            delta = choice.delta
            if delta is not None:
                content = self._read_delta(delta)
                if content:
                    text = content if text is None else text + content
                audio = getattr(delta, "audio", None)
                if audio is not None:
                    transcript = self._read_audio(audio, events)
                    if transcript:
                        text = transcript if text is None else text + transcript
            reason = choice.finish_reason
            if reason is not None:
                events.extend(self._end_choice(reason))
        if text is not None:
            if events:
                return [Token(text), *events]  # text and completed tool calls together
            return text
        if events:
            return events
        return None

    def _read_delta(self, delta: Any) -> str | None:
        """The text of the choice's ``delta``; its tool-call fragments and refusal are kept."""
        if delta.tool_calls:
            for fragment in delta.tool_calls:
                self._add_fragment(fragment)
        function_call = getattr(delta, "function_call", None)
        if function_call is not None:
            self._add_function_call(function_call)
        refusal = getattr(delta, "refusal", None)  # not every provider's delta has one
        if refusal:
            self._refusal.append(refusal)
        content: str | None = delta.content
        return content

    def _read_audio(self, audio: Any, events: list[Event]) -> str | None:
        """A ``delta.audio`` (an object or a mapping): its piece of audio goes to
        ``events``; its transcript is returned as text."""
        fields = audio if isinstance(audio, Mapping) else {
            name: getattr(audio, name, None) for name in ("id", "data", "transcript",
                                                          "expires_at")}
        audio_id = fields.get("id")
        if audio_id:
            self._audio_id = audio_id
        data = fields.get("data")
        if data:
            meta = {"expires_at": fields["expires_at"]} if fields.get("expires_at") else None
            events.append(Audio(data, self._audio_mime, index=self._audio, id=self._audio_id,
                                metadata=meta))
            self._audio += 1
        transcript: str | None = fields.get("transcript")
        return transcript

    def _end_choice(self, reason: str) -> list[ToolCall]:
        """The choice finished (``reason``): its tool calls, complete."""
        self._finish = reason
        if reason == "content_filter":
            raise L0Error(
                f"the {self._provider} stream was stopped: a content filter flagged the "
                f"output (finish_reason content_filter)",
                ErrorCode.CONTENT_POLICY,
                metadata={"finishReason": reason},
            )
        return self._complete_tools(reason)

    def _add_fragment(self, fragment: Any) -> None:
        index = fragment.index if fragment.index is not None else 0
        buf = self._tools.get(index)
        if buf is None:
            buf = self._tools[index] = ToolBuffer(index)
        if fragment.id:
            buf.id = fragment.id
        function = fragment.function
        if function is not None:
            if function.name and not buf.name:
                buf.name = function.name
            if function.arguments:
                buf.args.append(function.arguments)

    def _add_function_call(self, function_call: Any) -> None:
        buf = self._tools.get(-1)
        if buf is None:
            buf = self._tools[-1] = ToolBuffer(0)
        if function_call.name and not buf.name:
            buf.name = function_call.name
        if function_call.arguments:
            buf.args.append(function_call.arguments)

    def _complete_tools(self, reason: str) -> list[ToolCall]:
        calls = []
        for key in sorted(self._tools):
            buf = self._tools[key]
            if not buf.name:
                raise L0Error(
                    f"tool call #{buf.index} ({buf.id or 'no id'}) ended without a function "
                    f"name",
                    ErrorCode.UNKNOWN_ERROR,
                    metadata={"toolCallId": buf.id, "arguments": "".join(buf.args)},
                )
            args = parse_arguments("".join(buf.args), name=buf.name, call_id=buf.id,
                                   finish_reason=reason)
            calls.append(ToolCall(buf.id, buf.name, args, buf.index))
        self._tools.clear()
        return calls

    def finish(self) -> Finish:
        if self._finish is None:
            raise L0Error(
                f"the {self._provider} stream ended without a finish_reason: the output may "
                f"be cut",
                ErrorCode.INCOMPLETE,
            )
        if self._refusal:
            refusal = "".join(self._refusal)
            raise L0Error(
                f"the model refused: {refusal}",
                ErrorCode.CONTENT_POLICY,
                metadata={"refusal": refusal, "finishReason": self._finish},
            )
        return Finish(self._finish, self._usage)

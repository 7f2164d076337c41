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

Tool-call arguments that are not a JSON object raise an
:class:`~l0_core.L0Error` (``INCOMPLETE`` when the model stopped at its length
limit, ``UNKNOWN_ERROR`` otherwise, both retried); they never become ``{}``.
An empty arguments string is a call without arguments (``{}``).

The SDK is not imported: items are recognised by their class and module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from l0_core.errors import ErrorCode, L0Error
from l0_core.events import Token, ToolCall
from l0_core.runtime.adapters import AdapterSession, FeedResult, Finish
from l0_openai.errors import error_from_fields

__all__ = ["ChatCompletionsAdapter", "ResponsesAdapter", "parse_arguments"]


def _dump(obj: Any) -> Mapping[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        result: Mapping[str, Any] = dump(exclude_none=True)
        return result
    return dict(vars(obj))


def parse_arguments(
    raw: str, *, name: str, call_id: str, finish_reason: str | None = None
) -> dict[str, Any]:
    """Parse a tool call's JSON arguments; a clear :class:`L0Error` when they are not
    a JSON object (an empty string is ``{}``)."""
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        problem = f"are not valid JSON ({exc})"
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


class _ToolBuffer:
    __slots__ = ("args", "id", "index", "name")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id = ""
        self.name = ""
        self.args: list[str] = []


class _ChatSession:
    """One attempt over ``ChatCompletionChunk`` items."""

    __slots__ = ("_choice", "_finish", "_refusal", "_tools", "_usage")

    def __init__(self, choice_index: int = 0) -> None:
        self._choice = choice_index
        self._finish: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._tools: dict[int, _ToolBuffer] = {}
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
            self._usage = _dump(usage)
        text: str | None = None
        events: list[ToolCall] = []
        for choice in item.choices or ():
            if choice.index != self._choice:
                continue
            delta = choice.delta
            if delta is not None:
                content = self._read_delta(delta)
                if content:
                    text = content if text is None else text + content
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
        if delta.refusal:
            self._refusal.append(delta.refusal)
        content: str | None = delta.content
        return content

    def _end_choice(self, reason: str) -> list[ToolCall]:
        """The choice finished (``reason``): its tool calls, complete."""
        self._finish = reason
        if reason == "content_filter":
            raise L0Error(
                "OpenAI stopped the output: the content filter flagged it "
                "(finish_reason content_filter)",
                ErrorCode.CONTENT_POLICY,
                metadata={"finishReason": reason},
            )
        return self._complete_tools(reason)

    def _add_fragment(self, fragment: Any) -> None:
        index = fragment.index if fragment.index is not None else 0
        buf = self._tools.get(index)
        if buf is None:
            buf = self._tools[index] = _ToolBuffer(index)
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
            buf = self._tools[-1] = _ToolBuffer(0)
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
                "the OpenAI stream ended without a finish_reason: the output may be cut",
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


class ChatCompletionsAdapter:
    """Adapter ``openai``: Chat Completions ``ChatCompletionChunk`` streams.

    Options (``l0.run(adapter_options=...)``): ``choice_index`` (default 0), the
    choice to read when the request asks for ``n > 1``.
    """

    name = "openai"

    def detect(self, item: Any) -> bool:
        cls = type(item)
        return cls.__name__ == "ChatCompletionChunk" and cls.__module__.startswith("openai.")

    def open(self, options: Mapping[str, Any] | None = None) -> AdapterSession:
        index = 0
        if options:
            index = int(options.get("choice_index", 0))
        return _ChatSession(index)


_TEXT_DELTA = "response.output_text.delta"


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
        if kind == "response.output_item.done":
            output = item.item
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
            self._usage = _dump(getattr(response, "usage", None))
            self._finish = "tool_calls" if self._tools else "stop"
            return None
        if kind == "response.incomplete":
            response = item.response
            self._usage = _dump(getattr(response, "usage", None))
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

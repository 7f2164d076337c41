"""The ``litellm`` stream adapter: ``litellm.types.utils.ModelResponseStream`` chunks.

LiteLLM turns every provider's stream into OpenAI-shaped chunks, so this adapter
reads them with the core's :class:`~l0_core.runtime.chat_chunks.ChatChunkSession`, as
l0-openai's ``openai`` adapter does (so l0-litellm does not need l0-openai): text deltas of
the selected choice are the per-token fast path, tool calls are assembled from
their fragments and emitted with complete parsed arguments when the choice's
``finish_reason`` arrives, ``usage`` and the finish reason are reported at the
end, ``content_filter`` raises ``CONTENT_POLICY`` and a stream without a finish
reason is ``INCOMPLETE``.

litellm is not imported: chunks are recognised by their class and module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from l0_core.runtime.adapters import AdapterSession, FeedResult
from l0_core.runtime.chat_chunks import ChatChunkSession, parse_arguments

__all__ = ["LiteLLMAdapter", "parse_arguments"]


class _LiteLLMSession(ChatChunkSession):
    """The core's chat chunk session with a faster text path for LiteLLM's chunk objects."""

    __slots__ = ()

    def feed(self, item: Any) -> FeedResult:
        # LiteLLM keeps a chunk's choice and delta fields in pydantic's ``__pydantic_extra__``
        # and reads each attribute through ``__getattr__`` (~0.6 us each, five per token):
        # read the dicts directly. Anything unexpected (another LiteLLM version's layout, a
        # chunk that is not plain text) takes the general path.
        try:
            choices = item.choices
            if len(choices) == 1:
                fields = choices[0].__pydantic_extra__
                delta = fields["delta"].__pydantic_extra__
                content = delta["content"]
                if (
                    content
                    and fields["finish_reason"] is None
                    and fields["index"] == self._choice
                    and delta["tool_calls"] is None
                    and not delta.get("function_call")
                    and not delta.get("refusal")
                ):
                    text: str = content
                    return text
        except (AttributeError, TypeError, KeyError):
            pass
        return super().feed(item)


class LiteLLMAdapter:
    """Adapter ``litellm``: the chunks of ``litellm.acompletion(..., stream=True)``
    (a ``CustomStreamWrapper``, also through ``litellm.Router``).

    Options (``l0.run(adapter_options=...)``): ``choice_index`` (default 0).
    """

    name = "litellm"

    def detect(self, item: Any) -> bool:
        cls = type(item)
        return cls.__name__ == "ModelResponseStream" and cls.__module__.startswith("litellm.")

    def open(self, options: Mapping[str, Any] | None = None) -> AdapterSession:
        index = 0
        if options:
            index = int(options.get("choice_index", 0))
        return _LiteLLMSession(index, provider="LiteLLM")

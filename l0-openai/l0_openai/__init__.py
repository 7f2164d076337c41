"""l0-openai: the OpenAI integration of L0.

Installed, it is found by L0 through its entry point; nothing needs importing::

    import l0_core as l0
    from openai import AsyncOpenAI

    client = l0.wrap(AsyncOpenAI(), retry=l0.Retry(max_attempts=3))
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=[...],
                                                  stream=True)
    async for event in stream:
        ...

``l0.run(stream=factory)`` recognises the SDK's stream items with the
``openai`` (Chat Completions) and ``openai-responses`` (Responses API) adapters.
See docs/openai.md.
"""

from __future__ import annotations

from l0_openai.adapter import ChatCompletionsAdapter, ResponsesAdapter, parse_arguments
from l0_openai.errors import classify_error
from l0_openai.wrap import (
    L0AsyncOpenAI,
    resume_chat_request,
    resume_responses_request,
    wrap_client,
)

__version__ = "0.1.0"

__all__ = [
    "ChatCompletionsAdapter",
    "L0AsyncOpenAI",
    "ResponsesAdapter",
    "__version__",
    "classify_error",
    "parse_arguments",
    "resume_chat_request",
    "resume_responses_request",
    "wrap_client",
]

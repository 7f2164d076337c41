"""l0-litellm: the LiteLLM integration of L0.

Installed, it is found by L0 through its entry point: ``l0.run`` reads the streams of
``litellm.acompletion(..., stream=True)`` (and of ``litellm.Router``) with the
``litellm`` adapter, and LiteLLM's exceptions are classified by type::

    stream = l0.run(stream=lambda: litellm.acompletion(model=..., messages=..., stream=True))

or, with fallbacks to other models and LiteLLM's own retries turned off::

    stream = await l0_litellm.acompletion(model="gpt-4o", messages=[...],
                                          fallbacks=["anthropic/claude-3-haiku-20240307"],
                                          retry=l0.Retry(max_attempts=3))

See docs/litellm.md.
"""

from __future__ import annotations

from l0_litellm.adapter import LiteLLMAdapter
from l0_litellm.errors import classify_error
from l0_litellm.run import acompletion, completion_factory

__version__ = "0.1.0"

__all__ = ["LiteLLMAdapter", "__version__", "acompletion", "classify_error",
           "completion_factory"]

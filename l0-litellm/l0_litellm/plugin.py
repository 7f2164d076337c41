"""The L0 plugin of l0-litellm (entry point ``litellm`` in the ``l0`` group).

* ``l0_register_adapters``: the adapter ``litellm`` (``ModelResponseStream`` chunks);
* ``l0_classify_error``: LiteLLM's exceptions to L0 error codes. ``tryfirst``: LiteLLM's
  exceptions subclass the OpenAI SDK's, and l0-openai would read a
  ``ContextWindowExceededError`` as a plain ``BadRequestError``;

* ``l0_register_demo_scenarios``: the LiteLLM scenarios of ``l0 demo`` (``l0_litellm.demo``).

Loading this module imports neither litellm nor the demo.
"""

from __future__ import annotations

from l0_core.errors import Classification
from l0_core.plugins.hookspecs import Register, hookimpl
from l0_litellm.adapter import LiteLLMAdapter
from l0_litellm.errors import classify_error

__all__ = ["l0_classify_error", "l0_register_adapters", "l0_register_demo_scenarios"]


@hookimpl
def l0_register_adapters(register: Register) -> None:
    register(LiteLLMAdapter())


@hookimpl(tryfirst=True)
def l0_classify_error(error: BaseException) -> Classification | None:
    return classify_error(error)


@hookimpl
def l0_register_demo_scenarios(register: Register) -> None:
    from l0_litellm.demo import litellm_scenarios  # only ``l0 demo`` pays for litellm

    for scenario in litellm_scenarios():
        register(scenario)

"""The L0 plugin of l0-openai (entry point ``openai`` in the ``l0`` group).

* ``l0_register_adapters``: adapters ``openai`` (Chat Completions chunks) and
  ``openai-responses`` (Responses API events);
* ``l0_classify_error``: OpenAI SDK and httpx/httpx2 exceptions to L0 error codes;
* ``l0_wrap_client``: ``l0.wrap(AsyncOpenAI(...))``;
* ``l0_register_demo_scenarios``: the scenarios of ``l0 demo`` (``l0_openai.demo``).

Loading this module imports neither the OpenAI SDK nor the demo.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from l0_core.errors import Classification, ConfigError
from l0_core.plugins.hookspecs import Register, hookimpl
from l0_openai.adapter import ChatCompletionsAdapter, ResponsesAdapter
from l0_openai.errors import classify_error

__all__ = [
    "l0_classify_error",
    "l0_register_adapters",
    "l0_register_demo_scenarios",
    "l0_wrap_client",
]


@hookimpl
def l0_register_adapters(register: Register) -> None:
    register(ChatCompletionsAdapter())
    register(ResponsesAdapter())


@hookimpl
def l0_classify_error(error: BaseException) -> Classification | None:
    return classify_error(error)


@hookimpl
def l0_wrap_client(client: object, options: Mapping[str, Any]) -> object | None:
    module = type(client).__module__
    if module.startswith("l0_openai"):
        from l0_openai.wrap import L0AsyncOpenAI, wrap_client

        if isinstance(client, L0AsyncOpenAI):
            return wrap_client(client, options)
        return None
    if not module.startswith("openai"):
        return None
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        from l0_openai.wrap import wrap_client

        return wrap_client(client, options)
    if isinstance(client, openai.OpenAI):
        raise ConfigError(
            f"l0.wrap needs an asynchronous client: L0 streams are async. Use "
            f"openai.Async{type(client).__name__}(...) instead of openai."
            f"{type(client).__name__}(...)"
        )
    return None


@hookimpl
def l0_register_demo_scenarios(register: Register) -> None:
    from l0_openai.demo import openai_scenarios  # only ``l0 demo`` pays for the demo's server

    for scenario in openai_scenarios():
        register(scenario)

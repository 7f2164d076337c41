"""LiteLLM scenarios for ``l0 demo``: the real litellm library against a faulty local server.

Each scenario starts an OpenAI-compatible server in this process
(``l0_core.testing.openai_server``) that injects one fault, and streams from it with
``l0_litellm.acompletion`` (LiteLLM's ``openai/<model>`` provider, ``api_base`` pointed at
the server). They are few and quick: l0-openai's scenarios cover the fault catalogue.

Not registered through ``l0_register_demo_scenarios`` yet (see ``l0_litellm.plugin``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import l0_core as l0
from l0_core.demo import Scenario, Stage
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

__all__ = ["SETTING", "WHOLE", "litellm_scenarios"]

SETTING = ("the real litellm library, through l0_litellm.acompletion, against a local "
           "OpenAI-compatible server that injects faults")
SENTENCE = ["Any", " provider", ",", " one", " set", " of", " guarantees", "."]
WHOLE = "".join(SENTENCE)
MESSAGES = [{"role": "user", "content": "Say something about providers."}]


def _ok() -> Turn:
    return Turn(tokens=SENTENCE, delay=0.03)


def _case(
    name: str,
    title: str,
    fault: str,
    turns: Sequence[Turn] | Callable[[RecordedRequest], Turn],
    **options: Any,
) -> Scenario:
    options = {"retry": l0.Retry(base_delay=0.2, max_delay=2.0),
               "timeout": l0.Timeout(initial_token=3.0, inter_token=0.5), **options}

    async def play(stage: Stage) -> int:
        # offline: LiteLLM would fetch its model price list at import otherwise
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from l0_litellm.run import acompletion

        async with OpenAIServer(turns=turns) as server:
            stream = await acompletion(model="openai/primary", messages=MESSAGES,
                                       api_base=server.base_url, api_key="demo",
                                       on_event=stage.on_event, **options)
            await stage.show(stream)
            return len(server.requests)

    return Scenario(name=name, title=title, fault=fault, play=play, expected=WHOLE,
                    setting=SETTING)


def _primary_down(request: RecordedRequest) -> Turn:
    if (request.body or {}).get("model") == "primary":
        return Turn(status=503)
    return _ok()


def litellm_scenarios() -> list[Scenario]:
    """Every LiteLLM scenario, in the order ``l0 demo`` would play them."""
    return [
        _case("litellm-cut-midstream", "LiteLLM: connection cut", "socket closed after 4 tokens",
              [Turn(tokens=SENTENCE, delay=0.03, cut_after=4), _ok()]),
        _case("litellm-model-down", "LiteLLM: model down",
              "openai/primary answers 503 every time, fallback openai/backup", _primary_down,
              fallbacks=["openai/backup"], retry=l0.Retry(network_attempts=1, base_delay=0.2)),
    ]

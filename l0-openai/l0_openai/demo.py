"""The scenarios of ``l0 demo``: the real openai SDK against a faulty local server.

This package's plugin registers them through the ``l0_register_demo_scenarios``
hook, so ``l0 demo`` finds them without the core importing ``l0_openai``. Each
scenario starts an OpenAI-compatible server in this process
(``l0_core.testing.openai_server``) that injects one fault, and streams from it
with ``openai.AsyncOpenAI`` wrapped by ``l0.wrap``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import l0_core as l0
from l0_core.demo import Scenario, Stage
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

__all__ = ["SENTENCE", "SETTING", "WHOLE", "openai_scenarios"]

SETTING = ("the real openai SDK, wrapped by l0.wrap, against a local OpenAI-compatible "
           "server that injects faults")
SENTENCE = ["Streams", " fail", " in", " many", " ways", ";", " L0", " keeps", " the",
            " text", " whole", "."]
WHOLE = "".join(SENTENCE)
MESSAGES = [{"role": "user", "content": "Say something about streams."}]


def _ok(**extra: Any) -> Turn:
    return Turn(tokens=SENTENCE, delay=0.03, **extra)


def _case(
    name: str,
    title: str,
    fault: str,
    turns: Sequence[Turn] | Callable[[RecordedRequest], Turn],
    expected: str = WHOLE,
    **options: Any,
) -> Scenario:
    options = {"retry": l0.Retry(base_delay=0.2, max_delay=2.0),
               "timeout": l0.Timeout(initial_token=3.0, inter_token=0.5), **options}

    async def play(stage: Stage) -> int:
        from openai import AsyncOpenAI  # the SDK is imported when a scenario runs, not listed

        async with OpenAIServer(turns=turns) as server:
            raw = AsyncOpenAI(base_url=server.base_url, api_key="demo")
            try:
                client = l0.wrap(raw, on_event=stage.on_event, **options)
                stream = await client.chat.completions.create(
                    model="primary", messages=MESSAGES, stream=True
                )
                await stage.show(stream)
            finally:
                await raw.close()
            return len(server.requests)

    return Scenario(name=name, title=title, fault=fault, play=play, expected=expected,
                    setting=SETTING)


def _primary_down(request: RecordedRequest) -> Turn:
    if (request.body or {}).get("model") == "primary":
        return Turn(status=500)
    return _ok()


def openai_scenarios() -> list[Scenario]:
    """Every scenario, in the order ``l0 demo`` plays them."""
    cut = Turn(tokens=SENTENCE, delay=0.03, cut_after=5)
    return [
        _case("clean-stream", "clean stream", "none", [_ok()]),
        _case("rate-limited", "rate limited", "429, Retry-After: 1",
              [Turn(status=429, retry_after="1"), _ok()]),
        _case("server-error", "server error", "503 twice",
              [Turn(status=503), Turn(status=503), _ok()]),
        _case("cut-midstream", "connection cut", "socket closed after 5 tokens", [cut, _ok()]),
        _case("stalled-stream", "stalled stream", "silence after 4 tokens",
              [Turn(tokens=SENTENCE, delay=0.03, stall_after=4), _ok()]),
        _case("silent-truncation", "silent truncation", "no finish_reason, no [DONE]",
              [Turn(tokens=SENTENCE[:6], delay=0.03, finish_reason=None, done=False), _ok()]),
        _case("empty-answer", "empty answer", "zero tokens", [Turn(tokens=[]), _ok()]),
        _case("in-band-error", "in-band error", "error event inside a 200 stream",
              [Turn(tokens=SENTENCE, delay=0.03, error_after=3), _ok()]),
        _case("model-down", "model down", "primary answers 500 every time", _primary_down,
              fallbacks=[{"model": "backup"}],
              retry=l0.Retry(network_attempts=1, base_delay=0.2)),
        _case("resume", "resume", "cut, then continue from the checkpoint",
              [cut, Turn(tokens=[" ways", *SENTENCE[5:]], delay=0.03)],
              continue_from_last_good_token=True),
        _case("length-limit", "length limit", "finish_reason: length, then continue",
              [Turn(tokens=SENTENCE[:7], delay=0.03, finish_reason="length"),
               Turn(tokens=SENTENCE[7:], delay=0.03)],
              continue_from_last_good_token=True),
        _case("refusal", "refusal", "the model refuses (recommended guardrails)",
              [Turn(tokens=REFUSAL, delay=0.03), _ok()],
              guardrails=l0.Guardrails.recommended()),
        _case("broken-json", "broken JSON", "a '}' too many (json guardrail)",
              [Turn(tokens=[*JSON_TOKENS, "}"], delay=0.03), Turn(tokens=JSON_TOKENS, delay=0.03)],
              expected="".join(JSON_TOKENS), guardrails=[l0.Guardrails.json()],
              check_intervals=l0.CheckIntervals(guardrails=1)),
        _case("looping", "looping", "the model repeats itself (drift detection)",
              [Turn(tokens=LOOP, delay=0.004), _ok()], drift=True),
    ]

# what the guardrail and drift scenarios stream first
REFUSAL = ["I", "'m", " sorry", ",", " but", " I", " cannot", " provide", " that", ".",
           *SENTENCE, *SENTENCE]
JSON_TOKENS = ['{"', "answer", '":', ' "', "streams", " fail", '",', ' "', "ok", '":', " true",
               "}"]
LOOP = [" I", " will", " say", " it", " again", " and", " again", "."] * 30

"""Many wrapped streams at once, each with its own random (seeded) faults."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

import l0_core as l0
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

from .support import assert_all_closed, raw_client

STREAMS = 200


def _faults(rng: random.Random, tokens: list[str]) -> list[Turn]:
    """0-3 faulty turns for one conversation (at most one stall, to keep the test short)."""
    kinds = ["429", "500", "cut", "reset", "malformed", "in-band", "no-finish", "zero", "stall"]
    chosen = [rng.choice(kinds) for _ in range(rng.randint(0, 3))]
    if chosen.count("stall") > 1:
        chosen = [k for k in chosen if k != "stall"] + ["stall"]
    n = rng.randint(0, len(tokens) - 1)
    turns = []
    for kind in chosen:
        if kind == "429":
            turns.append(Turn(status=429, retry_after_ms=rng.randint(0, 5)))
        elif kind == "500":
            turns.append(Turn(status=rng.choice([500, 502, 503])))
        elif kind == "cut":
            turns.append(Turn(tokens=tokens, cut_after=n))
        elif kind == "reset":
            turns.append(Turn(tokens=tokens, cut_after=n, cut_mode="reset"))
        elif kind == "malformed":
            turns.append(Turn(tokens=tokens, malformed_after=n))
        elif kind == "in-band":
            turns.append(Turn(tokens=tokens, error_after=n))
        elif kind == "no-finish":
            turns.append(Turn(tokens=tokens, finish_reason=None, done=False))
        elif kind == "zero":
            turns.append(Turn(tokens=[]))
        else:
            turns.append(Turn(tokens=tokens, stall_after=n))
    return turns


@pytest.mark.slow  # about 4 s: the stalls wait for their timers
@pytest.mark.timeout(120)
async def test_concurrent_streams_with_random_faults() -> None:
    rng = random.Random(20240601)
    tokens = {i: ["Answer ", "for ", f"#{i}", "."] for i in range(STREAMS)}
    plans = {i: [*_faults(rng, tokens[i]), Turn(tokens=tokens[i], delay=0.001)]
             for i in range(STREAMS)}
    attempts: Counter[int] = Counter()

    def turn_for(request: RecordedRequest) -> Turn:
        key = int(request.messages[0]["content"].removeprefix("conversation "))
        plan = plans[key]
        turn = plan[min(attempts[key], len(plan) - 1)]
        attempts[key] += 1
        return turn

    async with OpenAIServer(turns=turn_for) as server:
        client = l0.wrap(
            raw_client(server),
            timeout=l0.Timeout(initial_token=5.0, inter_token=2.0),  # 100 clients on 2 cores
            retry=l0.Retry(attempts=4, network_attempts=4, max_retries=8),
        )

        async def converse(i: int) -> tuple[str, list[str]]:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"conversation {i}"}],
                stream=True,
            )
            kinds = [event.type.value async for event in stream]
            return stream.state.content, kinds

        results = await asyncio.gather(*(converse(i) for i in range(STREAMS)))

        for i, (text, kinds) in enumerate(results):
            assert text == "".join(tokens[i]), i
            assert kinds[-1] == "complete"
            assert kinds.count("error") == len(plans[i]) - 1, i
            assert attempts[i] == len(plans[i]), i
        assert len(server.requests) == sum(len(p) for p in plans.values())
        stalls = sum(1 for p in plans.values() for t in p if t.stall_after is not None)
        await assert_all_closed(server, client)
        assert server.abandoned == stalls

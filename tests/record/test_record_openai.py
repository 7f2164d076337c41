"""Recording sessions of the real OpenAI SDK against the fault-injecting server, and
replaying them without it: a property test over random fault scripts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import l0_core as l0
from l0_core.plugins import host as plugins
from l0_core.testing import instant_backoff
from l0_core.testing.openai_server import OpenAIServer, Turn
from tests.openai.support import FAST, MESSAGES, MODEL, OK, TEXT, TOKENS, raw_client
from tests.openai.test_openai_faults import SCENARIOS as MATRIX
from tests.record.support import Seen, assert_same

openai = pytest.importorskip("openai")


@pytest.fixture(autouse=True)
def _openai_plugin() -> Iterator[None]:
    host = plugins.get_host()
    if "openai" not in host.registry("adapters"):
        import l0_openai.plugin

        host.register(l0_openai.plugin, "l0-openai")
    with instant_backoff():
        yield


def _fault(kind: str, n: int) -> Turn:
    return {
        "500": Turn(status=500),
        "503": Turn(status=503),
        "429": Turn(status=429, retry_after=0),
        "cut": Turn(tokens=TOKENS, cut_after=n),
        "reset": Turn(tokens=TOKENS, cut_after=n, cut_mode="reset"),
        "in-band error": Turn(tokens=TOKENS, error_after=n),
        "malformed": Turn(tokens=TOKENS, malformed_after=n),
        "no finish": Turn(tokens=TOKENS[:n], finish_reason=None, done=False),
        "empty": Turn(tokens=[]),
        "400": Turn(status=400),
    }[kind]


FAULTS = st.lists(
    st.tuples(st.sampled_from(["500", "503", "429", "cut", "reset", "in-band error",
                               "malformed", "no finish", "empty", "400"]),
              st.integers(min_value=0, max_value=3)),
    min_size=0, max_size=3)


async def _session(server: OpenAIServer, url: str, continuation: bool,
                   **options: Any) -> tuple[Seen, Seen]:
    client = raw_client(server)

    async def factory(resume: l0.Resume | None) -> Any:
        return await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                    stream=True)

    live, again = Seen(), Seen()
    options = {"fallbacks": [factory], "timeout": FAST,
               "retry": l0.Retry(attempts=2, network_attempts=2), **options}
    stream = l0.run(stream=factory, record=url, continue_from_last_good_token=continuation,
                    **options, **live.kwargs())
    await live.consume(stream)
    await stream.recording.wait()
    requests = len(server.requests)
    await client.close()
    await again.consume(l0.replay(stream.id, store=url, **again.kwargs()))
    assert len(server.requests) == requests  # the replay made no request
    return live, again


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=FAULTS, continuation=st.booleans())
async def test_any_fault_script_replays_identically(
    tmp_path: Path, faults: list[tuple[str, int]], continuation: bool
) -> None:
    url = f"sqlite:///{tmp_path}/openai-{uuid.uuid4().hex}.db"
    turns = [*(_fault(kind, n) for kind, n in faults), OK]
    async with OpenAIServer(turns=turns) as server:
        live, again = await _session(server, url, continuation)
    assert_same(live, again)
    if live.raised is None and not continuation:
        assert live.state[0] == TEXT
    await l0.open_store(url).close()


@pytest.mark.parametrize("name", list(MATRIX))
async def test_the_openai_fault_matrix_replays_identically(tmp_path: Path, name: str) -> None:
    scenario = MATRIX[name]
    url = f"sqlite:///{tmp_path}/matrix.db"
    async with OpenAIServer(turns=scenario.turns) as server:
        live, again = await _session(server, url, False, fallbacks=[],
                                     **{"timeout": FAST, "retry": l0.Retry(),
                                        **scenario.options})
    assert_same(live, again)
    assert live.raised is None and live.state[0] == TEXT
    await l0.open_store(url).close()


async def test_held_text_of_an_attempt_that_fails_at_its_end_is_not_kept(tmp_path: Path) -> None:
    # Found by the property test: a continuation whose only text is the repeated end of
    # the checkpoint (held back by the overlap removal) and whose stream ends without a
    # finish reason. The held text is never delivered, so it must not stay in the content.
    url = f"sqlite:///{tmp_path}/held.db"
    async with OpenAIServer(turns=[_fault("cut", 2), _fault("no finish", 1), OK]) as server:
        live, again = await _session(server, url, True)
    assert live.raised is None and live.state[0] == TEXT
    assert [e for e in live.events if e[0] == "token"] == [
        ("token", "Hello"), ("token", ", "), ("token", "world"), ("token", "!")]
    assert live.events[-1] == ("complete", TEXT, None, "stop")
    assert_same(live, again)
    await l0.open_store(url).close()


async def test_a_wrapped_client_records_every_stream(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/wrapped.db"
    async with OpenAIServer(turns=[Turn(status=503), OK]) as server:
        client = raw_client(server)
        wrapped = l0.wrap(client, record=url, timeout=FAST)
        stream = await wrapped.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                       stream=True)
        assert await stream.read() == TEXT
        await stream.recording.wait()
        await client.close()
    replayed = l0.replay(stream.id, store=url)
    assert await replayed.read() == TEXT
    assert [e.code for e in replayed.errors] == [l0.ErrorCode.SERVER_ERROR]
    assert replayed.errors[0].status == 503
    info = await l0.open_store(url).info(stream.id)
    assert info is not None and info.meta["model"] == MODEL and info.meta["attempts"] == 2
    await l0.open_store(url).close()

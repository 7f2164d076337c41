"""l0.parallel, l0.sequential and l0.batched over the real openai SDK and the test server."""

from __future__ import annotations

import ast
import contextlib
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.testing import Script, ScriptedSource
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

from .support import FAST, ask, client_for, eventually, settled, words


def _echo(delay: float = 0.0) -> Any:
    """Answer each prompt with ``Answer: <prompt>`` (``fail`` in a prompt: HTTP 400)."""

    def turn_for(request: RecordedRequest) -> Turn:
        prompt = request.messages[-1]["content"]
        if "fail" in prompt:
            return Turn(status=400)
        return Turn(tokens=words(f"Answer: {prompt}"), delay=delay)

    return turn_for


def _readme_example() -> str:
    """The ``l0.parallel`` block of the README (the seed's example, word for word)."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    [block] = [b for b in blocks if "l0.parallel(tasks=" in b]
    return block


async def test_the_seed_example_runs_as_written() -> None:
    from openai import AsyncOpenAI

    source = _readme_example()
    assert "concurrency=3)" in source and "result.state.content.strip()" in source
    async with OpenAIServer(turns=_echo()) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="test")
        prompts = ["What is 2+2?", "Name a colour.", "Say hi.", "Count to three."]
        namespace: dict[str, Any] = {"l0": l0, "client": client, "prompts": prompts}
        code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await eval(code, namespace)
        assert out.getvalue().splitlines() == [f"{p}: Answer: {p}" for p in prompts]
        results = namespace["results"]
        assert [r.text for r in results] == [f"Answer: {p}" for p in prompts]
        assert results.all_succeeded and results.errors == [] and len(results.succeeded) == 4
        assert server.peak_active <= 3
        await settled(server, client)


async def test_never_more_than_concurrency_streams_at_once() -> None:
    done: list[int] = []
    progress: list[tuple[int, int]] = []
    async with OpenAIServer(turns=_echo(delay=0.02)) as server:
        client = client_for(server)
        tasks = [ask(client, "gpt-4o-mini", f"question {i}") for i in range(9)]
        results = await l0.parallel(tasks, concurrency=3, timeout=FAST,
                                    on_result=lambda r: done.append(r.index),
                                    on_progress=lambda d, t: progress.append((d, t)))
        assert [r.text for r in results] == [f"Answer: question {i}" for i in range(9)]
        assert server.peak_active == 3  # the limit, reached and never passed
        assert server.peak_connections <= 3
        assert sorted(done) == list(range(9))
        assert progress == [(n, 9) for n in range(1, 10)]
        await settled(server, client)


async def test_a_failure_is_isolated_to_its_task() -> None:
    async with OpenAIServer(turns=_echo()) as server:
        client = client_for(server)
        prompts = ["one", "fail two", "three"]
        results = await l0.parallel([ask(client, "m", p) for p in prompts])
        assert [r.status for r in results] == ["succeeded", "failed", "succeeded"]
        assert results[1].error is not None
        assert results[1].error.code is l0.ErrorCode.BAD_REQUEST
        assert results.errors == [results[1].error]
        assert [r.index for r in results.failed] == [1]
        assert results[0].text == "Answer: one" and results[1].text == ""
        await settled(server, client)


async def test_fail_fast_aborts_the_running_streams_and_skips_the_rest() -> None:
    async with OpenAIServer(turns=_echo(delay=0.1)) as server:
        client = client_for(server)
        prompts = ["a long answer " * 3, "fail now", "another long answer " * 3, "d", "e", "f"]
        started = time.monotonic()
        progress: list[tuple[int, int]] = []
        reported: list[tuple[int, str]] = []
        results = await l0.parallel([ask(client, "m", p) for p in prompts], concurrency=3,
                                    fail_fast=True, on_progress=lambda *p: progress.append(p),
                                    on_result=lambda r: reported.append((r.index, r.status)))
        assert time.monotonic() - started < 0.5  # not the ~1 s the long answers take
        assert [r.status for r in results] == ["aborted", "failed", "aborted", "skipped",
                                               "skipped", "skipped"]
        assert results[0].reason == "fail_fast: task 1 failed (BAD_REQUEST)"
        # every task is reported, the skipped ones too: progress reaches 6 of 6
        assert progress == [(n, 6) for n in range(1, 7)]
        assert sorted(reported) == [(0, "aborted"), (1, "failed"), (2, "aborted"),
                                    (3, "skipped"), (4, "skipped"), (5, "skipped")]
        assert reported[:4] == [(1, "failed"), (3, "skipped"), (4, "skipped"), (5, "skipped")]
        assert results[3].stream is None and results[3].error is not None
        assert results[3].error.code is l0.ErrorCode.STREAM_ABORTED
        # the skipped tasks never reached the server; the aborted ones were cut off
        assert len(server.completion_requests) == 3
        assert await eventually(lambda: server.abandoned == 2)
        await settled(server, client)


async def test_children_carry_the_parent_id_and_the_shared_options() -> None:
    seen: list[l0.ObservabilityEvent] = []
    source = ScriptedSource([Script(["x"], fail_after=0), Script(["fine"])])
    results = await l0.parallel(
        [source, lambda: _tokens("b")], on_event=seen.append, context={"requestId": "r-7"},
        retry=l0.Retry(network_attempts=2))
    assert results.texts == ["fine", "b"]
    assert results[0].state is not None and results[0].state.network_retry_count == 1
    T = l0.ObservabilityEventType
    own = [e for e in seen if e.stream_id == results.id]
    assert [e.type for e in own] == [T.PARALLEL_START, T.PARALLEL_END]
    assert own[0].context == {"requestId": "r-7"}
    starts = [e for e in seen if e.type is T.SESSION_START]
    assert {(e.context["parentId"], e.context["taskIndex"], e.context["requestId"])
            for e in starts} == {(results.id, 0, "r-7"), (results.id, 1, "r-7")}
    tokens = [(e.stream_id, e.text) for e in seen if e.is_token]
    assert (results[1].id, "b") in tokens and (results[0].id, "fine") in tokens


async def _tokens(*pieces: str) -> Any:
    for piece in pieces:
        yield piece


async def test_value_tasks_are_retried_and_give_their_value() -> None:
    calls = 0

    async def flaky() -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("dropped")
        return {"answer": 42}

    async def text() -> str:
        return "plain text"

    results = await l0.parallel([flaky, text], retry=l0.Retry(network_attempts=2))
    assert results[0].value == {"answer": 42} and calls == 2
    assert results[1].value == results[1].text == "plain text"


async def test_a_task_per_task_options_and_a_nested_l0_stream() -> None:
    source = ScriptedSource([Script(["x"], fail_after=0), Script(["ok"])])
    results = await l0.parallel(
        [{"stream": source, "retry": l0.Retry(network_attempts=1)},
         lambda: l0.run(stream=lambda: _tokens("a"))],
        retry=l0.Retry.none())
    assert results[0].text == "ok"
    assert results[1].error is not None and results[1].error.code is l0.ErrorCode.INVALID_STREAM
    assert "l0.wrap" in results[1].error.message


async def test_sequential_runs_in_order_one_at_a_time() -> None:
    async with OpenAIServer(turns=_echo(delay=0.005)) as server:
        client = client_for(server)
        results = await l0.sequential([ask(client, "m", f"q{i}") for i in range(4)])
        assert [r.messages[-1]["content"] for r in server.completion_requests] == \
            ["q0", "q1", "q2", "q3"]
        assert server.peak_active == 1
        assert results.texts == [f"Answer: q{i}" for i in range(4)]
        await settled(server, client)


async def test_batched_isolates_each_item() -> None:
    progress: list[int] = []
    async with OpenAIServer(turns=_echo(delay=0.01)) as server:
        client = client_for(server)
        items = ["a", "b", "fail c", "d", "e", "f", "g"]
        results = await l0.batched(
            items, lambda item: ask(client, "m", item)(), batch_size=3,
            on_progress=lambda done, total: progress.append(done))
        assert [r.index for r in results] == list(range(7))
        assert [r.ok for r in results] == [True, True, False, True, True, True, True]
        assert results[3].text == "Answer: d"
        assert server.peak_active <= 3
        assert progress == list(range(1, 8))
        await settled(server, client)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: l0.parallel("abc"), "tasks must be a list"),
        (lambda: l0.parallel([1]), r"tasks\[0\] must be a stream factory"),
        (lambda: l0.parallel([], concurrency=0), "concurrency must be a whole number"),
        (lambda: l0.parallel([], retry=3), "retry must be"),
        (lambda: l0.parallel([], on_progress=5), "on_progress must be a function"),
        (lambda: l0.parallel([], stream=5), "unknown option"),
        (lambda: l0.parallel([], fallbacks=[1]), r"fallbacks\[0\] must be"),
        (lambda: l0.parallel([], drift_action="panic"), "drift_action must be"),
        (lambda: l0.parallel([{"stream": print, "timeout": 3}]), "timeout must be"),
        (lambda: l0.batched([1], "handler"), "must be a stream factory"),
        (lambda: l0.batched([1], print, batch_size=0), "batch_size"),
        (lambda: l0.batched(5, print), "items must be a list"),
        (lambda: l0.batched("abc", print), "items must be a list"),
        (lambda: l0.batched([1], print, on_progress=5), "on_progress must be a function"),
        (lambda: l0.batched([1], print, on_result=5), "on_result must be a function"),
        (lambda: l0.parallel([], fail_fast="yes"), "fail_fast must be True or False"),
        (lambda: l0.sequential([], fail_fast=1), "fail_fast must be True or False"),
    ],
)
async def test_bad_input_is_a_config_error(call: Any, message: str) -> None:
    with pytest.raises(l0.ConfigError, match=message):
        await call()


async def test_an_empty_list_gives_an_empty_result() -> None:
    results = await l0.parallel([])
    assert len(results) == 0 and results.all_succeeded


async def test_value_of_a_media_stream_is_its_text_or_its_media() -> None:
    async def spoken() -> Any:
        yield l0.Audio(b"pcm-1", "audio/pcm")
        yield l0.Token("Hello")
        yield l0.Audio(b"pcm-2", "audio/pcm")

    picture = l0.Image(b"\x89PNG", "image/png")

    async def drawn() -> Any:
        yield picture

    async def with_data() -> Any:
        yield l0.Token("text")
        yield l0.Data({"answer": 42})
        yield l0.Audio(b"pcm", "audio/pcm")

    results = await l0.parallel([spoken, drawn, with_data], retry=l0.Retry.none())
    assert [r.value for r in results] == ["Hello", picture, {"answer": 42}]
    assert [a.bytes for a in results[0].state.data_outputs] == [b"pcm-1", b"pcm-2"]

"""l0.pipe / l0.create_pipeline over the real openai SDK and the test server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import l0_core as l0
from l0_core.multi import StepContext
from l0_core.testing.openai_server import OpenAIServer, RecordedRequest, Turn

from .support import FAST, client_for, eventually, settled, words

T = l0.ObservabilityEventType


def _server_script() -> Any:
    """outline -> draft (fails once with a 503) -> title."""
    drafts = 0

    def turn_for(request: RecordedRequest) -> Turn:
        nonlocal drafts
        prompt = request.messages[-1]["content"]
        if prompt.startswith("Outline"):
            return Turn(tokens=words("1. cats 2. dogs"))
        if prompt.startswith("Draft"):
            drafts += 1
            if drafts == 1:
                return Turn(status=503)
            return Turn(tokens=words(f"Cats and dogs, from: {prompt[7:]}"), delay=0.005)
        return Turn(tokens=words("A Tale of Pets"))

    return turn_for


def _steps(client: Any) -> list[l0.Step]:
    def chat(prompt: str) -> Any:
        return lambda: client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], stream=True)

    return [
        l0.Step("outline", lambda topic, ctx: chat(f"Outline {topic}")),
        # this step's own options: it may retry (the pipeline's options do not)
        l0.Step("draft", lambda outline, ctx: {"stream": chat(f"Draft: {outline}"),
                                                "retry": l0.Retry(network_attempts=2)}),
        l0.Step("title", lambda draft, ctx: chat(f"Title for {draft}"),
                transform=lambda text, ctx: text.upper()),
    ]


async def test_three_steps_one_retried() -> None:
    seen: list[l0.ObservabilityEvent] = []
    async with OpenAIServer(turns=_server_script()) as server:
        client = client_for(server)
        result = await l0.pipe(_steps(client), "pets", retry=l0.Retry.none(), timeout=FAST,
                               on_event=seen.append)
        assert result.status == "succeeded" and result.error is None
        assert result.output == "A TALE OF PETS" == result.text
        outline, draft, title = result.steps
        assert outline.output == "1. cats 2. dogs" and outline.input == "pets"
        assert draft.input == "1. cats 2. dogs"
        assert draft.output == "Cats and dogs, from: 1. cats 2. dogs"
        assert draft.state is not None and draft.state.network_retry_count == 1
        assert outline.state is not None and outline.state.retry_count == 0
        assert title.text == "A Tale of Pets" and title.output == "A TALE OF PETS"
        prompts = [r.messages[-1]["content"] for r in server.completion_requests]
        assert prompts == ["Outline pets", "Draft: 1. cats 2. dogs", "Draft: 1. cats 2. dogs",
                           "Title for Cats and dogs, from: 1. cats 2. dogs"]
        await settled(server, client)
    own = [(e.type, e.get("step")) for e in seen if e.stream_id == result.id]
    assert own == [(T.PIPELINE_START, None),
                   (T.PIPELINE_STEP_START, "outline"), (T.PIPELINE_STEP_END, "outline"),
                   (T.PIPELINE_STEP_START, "draft"), (T.PIPELINE_STEP_END, "draft"),
                   (T.PIPELINE_STEP_START, "title"), (T.PIPELINE_STEP_END, "title"),
                   (T.PIPELINE_END, None)]
    starts = [e for e in seen if e.type is T.SESSION_START]
    assert [e.context["taskIndex"] for e in starts] == [0, 1, 2]


async def test_without_its_own_retry_the_step_fails_and_stops_the_pipeline() -> None:
    async with OpenAIServer(turns=_server_script()) as server:
        client = client_for(server)
        steps = _steps(client)
        steps[1] = l0.Step("draft", lambda o, ctx: lambda: client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"Draft: {o}"}], stream=True))
        result = await l0.pipe(steps, "pets", retry=l0.Retry.none())
        assert result.status == "failed" and result.output is None
        assert [s.status for s in result.steps] == ["succeeded", "failed"]
        assert result.error is not None and result.error.code is l0.ErrorCode.SERVER_ERROR
        assert len(server.completion_requests) == 2
        await settled(server, client)


async def test_streaming_the_steps_tokens() -> None:
    async with OpenAIServer(turns=_server_script()) as server:
        client = client_for(server)
        pipeline = l0.create_pipeline(_steps(client), retry=l0.Retry.none())
        run = pipeline.stream("pets")
        tokens = [(e.step, e.text) async for e in run if e.is_token]
        assert tokens[:4] == [("outline", "1. "), ("outline", "cats "), ("outline", "2. "),
                              ("outline", "dogs")]
        assert [t for s, t in tokens if s == "title"] == words("A Tale of Pets")
        assert run.result is not None and run.result.output == "A TALE OF PETS"
        await settled(server, client)


async def _say(text: str) -> Any:
    yield text


async def test_conditions_branches_values_and_continue_on_error() -> None:
    def shout(text: str, ctx: StepContext) -> Any:
        return lambda: _say(text.upper() + "!")

    async def count(text: str, ctx: StepContext) -> int:
        ctx.metadata["counted"] = True
        return len(text)

    def broken(value: Any, ctx: StepContext) -> Any:
        raise KeyError("oops")

    steps = [
        l0.Step("skip me", shout, condition=lambda value, ctx: False),
        l0.Branch("long or short", lambda value, ctx: len(value) > 3,
                  if_true=l0.Step("long", shout), if_false=l0.Step("short", shout)),
        l0.Step("broken", broken),
        l0.Step("count", count),
        l0.Step("describe", lambda n, ctx: lambda: _say(f"{n} characters"),
                transform=lambda text, ctx: f"{text} ({ctx.previous[3].output})"),
    ]
    result = await l0.pipe(steps, "hello", stop_on_error=False)
    assert [s.status for s in result.steps] == ["skipped", "succeeded", "failed", "succeeded",
                                                "succeeded"]
    assert result.steps[0].output == "hello"
    assert result.steps[1].branch == "long" and result.steps[1].output == "HELLO!"
    assert result.steps[2].error is not None
    assert result.steps[2].error.code is l0.ErrorCode.INVALID_STREAM
    assert "KeyError" in result.steps[2].error.message
    assert result.steps[3].output == 6 and result.steps[3].task is None
    assert result.output == "6 characters (6)"
    assert result.status == "partial"


async def test_bad_steps_are_config_errors() -> None:
    with pytest.raises(l0.ConfigError, match=r"steps\[0\] must be an l0 Step"):
        await l0.pipe([lambda x: x], "in")
    with pytest.raises(l0.ConfigError, match="unknown option"):
        l0.create_pipeline([l0.Step("s", lambda v, c: v, options={"retries": 2})])
    result = await l0.pipe([l0.Step("it", lambda v, c: _say(v))], "x")
    assert result.status == "failed" and result.error is not None
    assert "return a stream factory" in result.error.message


def _endless(closed: list[str], name: str) -> Any:
    async def tokens() -> Any:
        try:
            for i in range(1000):
                yield f"{name}{i} "
                await asyncio.sleep(0.01)
        finally:
            closed.append(name)

    return tokens


async def test_closing_a_pipeline_stream_closes_the_step_upstream_at_once() -> None:
    closed: list[str] = []
    seen: list[l0.ObservabilityEvent] = []
    pipeline = l0.create_pipeline([l0.Step("talk", lambda v, c: _endless(closed, "a")),
                                   l0.Step("never", lambda v, c: _endless(closed, "b"))],
                                  on_event=seen.append)
    async with pipeline.stream("x") as run:
        async for event in run:
            assert event.text == "a0 "
            break
    assert closed == ["a"]  # closed when the async with ended, not at garbage collection
    assert run.result is not None and run.result.status == "aborted"
    assert [s.status for s in run.result.steps] == ["aborted"]
    assert run.result.error is not None
    assert run.result.error.code is l0.ErrorCode.STREAM_ABORTED
    assert seen[-1].type is T.PIPELINE_END and seen[-1]["status"] == "aborted"
    assert [e async for e in run] == []  # over
    # closed from the outside, while it is being read
    other = pipeline.stream("y")
    iterator = aiter(other)
    await anext(iterator)
    await other.aclose()
    assert closed == ["a", "a"]
    # a plain break: closed as soon as the iterator is dropped
    async for _ in pipeline.stream("z"):
        break
    assert await eventually(lambda: closed == ["a", "a", "a"], within=1.0)


async def test_previous_holds_only_the_steps_before() -> None:
    seen: list[list[str]] = []

    def note(value: Any, ctx: StepContext) -> Any:
        seen.append([r.name for r in ctx.previous])
        return value

    steps = [l0.Step("one", note), l0.Step("two", note), l0.Step("three", note)]
    result = await l0.pipe(steps, "in")
    assert seen == [[], ["one"], ["one", "two"]]
    assert result.output == "in"


def test_bad_steps_and_branches_are_config_errors_up_front() -> None:
    def fn(value: Any, ctx: StepContext) -> Any:
        return value

    bad: list[tuple[Any, str]] = [
        (lambda: l0.Step("a", "not callable"), "fn must be a function"),  # type: ignore[arg-type]
        (lambda: l0.Step("a", fn, transform=5), "transform must be a function"),  # type: ignore[arg-type]
        (lambda: l0.Step("a", fn, condition="yes"), "condition must be a function"),  # type: ignore[arg-type]
        (lambda: l0.Step("a", fn, options=[1]), "options must be a mapping"),  # type: ignore[arg-type]
        (lambda: l0.Branch("b", lambda v, c: True, if_true="x"), "if_true must be an l0 Step"),  # type: ignore[arg-type]
        (lambda: l0.Branch("b", lambda v, c: True, if_true=l0.Step("a", fn), if_false=fn),  # type: ignore[arg-type]
         "if_false must be an l0 Step"),
        (lambda: l0.Branch("b", True, if_true=l0.Step("a", fn)), "condition must be a function"),  # type: ignore[arg-type]
        (lambda: l0.create_pipeline([l0.Step("a", fn)], stop_on_error="no"),  # type: ignore[arg-type]
         "stop_on_error must be True or False"),
    ]
    for make, message in bad:
        with pytest.raises(l0.ConfigError, match=message):
            make()

"""Regression tests for the runtime defects of the hardening issue (each failed before it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import l0_core as l0
from l0_core.testing import Script, ScriptedSource
from tests.core.helpers import Recorder

pytestmark = pytest.mark.usefixtures("instant")


# -- 1. guardrails are rebuilt for every attempt --------------------------------------------------


async def test_rules_retired_in_one_attempt_check_the_next() -> None:
    # attempt 1 is prose: the json rule retires from streaming checks at the first tick;
    # attempt 2 is broken JSON and must be judged by a fresh rule, as the same text alone is
    every_token = l0.CheckIntervals(guardrails=1)
    source = ScriptedSource([Script(["Hello"], fail_after=1), Script(['{"a":'])])
    stream = l0.run(stream=source, guardrails=[l0.Guardrails.json()],
                    check_intervals=every_token, retry=l0.Retry(attempts=0, network_attempts=1))
    with pytest.raises(l0.L0Error) as caught:
        await stream.read()
    assert caught.value.code is l0.ErrorCode.GUARDRAIL_VIOLATION
    assert [e.code for e in stream.errors] == [l0.ErrorCode.NETWORK_ERROR,
                                               l0.ErrorCode.GUARDRAIL_VIOLATION]
    assert source.calls == 2
    alone = l0.run(stream=ScriptedSource([Script(['{"a":'])]),
                   guardrails=[l0.Guardrails.json()], check_intervals=every_token,
                   retry=l0.Retry(attempts=0))
    with pytest.raises(l0.L0Error) as caught_alone:
        await alone.read()
    assert caught_alone.value.code is l0.ErrorCode.GUARDRAIL_VIOLATION


# -- 2. the watchdog interrupts the read of whichever task drives the stream ----------------------


async def _stall_in_a_task(tokens: list[str]) -> AsyncIterator[str]:
    for t in tokens:
        yield t
    # the pending read awaits a Task, as SDKs that wrap reads in tasks do
    await asyncio.create_task(asyncio.sleep(30))
    yield "never"


async def test_stall_behind_a_task_under_wait_for_times_out() -> None:
    calls = 0

    def factory() -> AsyncIterator[str]:
        nonlocal calls
        calls += 1
        return _stall_in_a_task(["a", "b"]) if calls == 1 else _stall_in_a_task(["c"])

    stream = l0.run(stream=factory, timeout=l0.Timeout(inter_token=0.3),
                    retry=l0.Retry(network_attempts=0, attempts=0))
    it = aiter(stream)
    texts: list[str] = []
    started = time.monotonic()
    with pytest.raises(l0.L0Error) as caught:
        while True:  # a new task per item, as asyncio.wait_for makes on Python 3.11
            event = await asyncio.wait_for(anext(it), 3.0)
            if event.is_token:
                texts.append(event.text or "")
    assert caught.value.code is l0.ErrorCode.INTER_TOKEN_TIMEOUT
    assert texts == ["a", "b"]
    assert time.monotonic() - started < 1.5  # the 0.3 s limit, not wait_for's 3 s


async def test_stall_is_interrupted_in_the_task_that_reads_now() -> None:
    stream = l0.run(stream=lambda: _stall_in_a_task(["first"]),
                    timeout=l0.Timeout(inter_token=0.2), retry=l0.Retry.none())
    it = aiter(stream)
    first = await asyncio.create_task(anext(it))  # one task reads the first token
    assert first.text == "first"

    events: list[l0.Event] = []

    async def read_on() -> BaseException | None:  # another task reads on
        try:
            while True:
                events.append(await anext(it))
        except BaseException as exc:
            return exc

    got = await asyncio.wait_for(asyncio.create_task(read_on()), 2.0)
    assert isinstance(got, l0.L0Error)
    assert got.code is l0.ErrorCode.INTER_TOKEN_TIMEOUT
    assert [e.type.value for e in events] == ["error"]


# -- 3. only a factory that declares a parameter for it gets a Resume -----------------------------


async def test_factory_with_an_optional_parameter_gets_nothing() -> None:
    async def tokens(prefix: str = "Hello") -> AsyncIterator[str]:
        yield prefix
        yield ", world"

    assert await l0.run(stream=lambda: tokens()).read() == "Hello, world"
    assert await l0.run(stream=tokens).read() == "Hello, world"


async def test_factories_that_ask_for_a_resume_get_one() -> None:
    got: list[Any] = []

    async def body() -> AsyncIterator[str]:
        yield "x"

    def required(r: Any) -> AsyncIterator[str]:
        got.append(("required", r))
        return body()

    def named(resume: Any = None) -> AsyncIterator[str]:
        got.append(("named", resume))
        return body()

    def annotated(point: l0.Resume | None = None) -> AsyncIterator[str]:
        got.append(("annotated", point))
        return body()

    for factory in (required, named, annotated):
        assert await l0.run(stream=factory).read() == "x"
    assert got == [("required", None), ("named", None), ("annotated", None)]


async def test_a_bug_in_the_factory_is_not_retried() -> None:
    calls = 0

    def factory() -> AsyncIterator[str]:
        nonlocal calls
        calls += 1
        return {}["model"]  # type: ignore[no-any-return]

    stream = l0.run(stream=factory, retry=l0.Retry(attempts=3, network_attempts=3))
    with pytest.raises(l0.L0Error) as caught:
        await stream.read()
    assert caught.value.code is l0.ErrorCode.INVALID_STREAM
    assert "KeyError" in caught.value.message
    assert calls == 1


# -- 6. aclose() from another task; read() twice --------------------------------------------------


async def test_aclose_from_another_task_ends_the_reader_quietly() -> None:
    source = ScriptedSource([Script(["a"], stall_after=1)])
    stream = l0.run(stream=source, timeout=l0.Timeout(inter_token=None, initial_token=None))
    seen: list[str] = []

    async def reader() -> None:
        seen.extend([event.text or "" async for event in stream if event.is_token])

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    await stream.aclose()
    await asyncio.wait_for(task, 1.0)  # the reader's iteration simply ended
    assert seen == ["a"]
    assert source.all_closed


async def test_read_twice_returns_the_text_again() -> None:
    source = ScriptedSource([Script(["a", "b"])])
    stream = l0.run(stream=source)
    assert await stream.read() == "ab"
    assert await stream.read() == "ab"
    assert source.calls == 1


async def test_read_twice_after_a_failure_raises_the_same_error() -> None:
    stream = l0.run(stream=ScriptedSource([Script(["a"], fail_after=1)]), retry=l0.Retry.none())
    with pytest.raises(l0.L0Error) as first:
        await stream.read()
    with pytest.raises(l0.L0Error) as second:
        await stream.read()
    assert second.value is first.value


# -- 7. TIMEOUT_TRIGGERED reports the time that passed --------------------------------------------


async def test_timeout_triggered_reports_elapsed_time() -> None:
    rec = Recorder()
    source = ScriptedSource([Script(["a"], stall_after=1)])
    stream = l0.run(stream=source, timeout=l0.Timeout(inter_token=0.2), on_event=rec,
                    retry=l0.Retry.none())
    with pytest.raises(l0.L0Error):
        await stream.read()
    (fired,) = rec.of("TIMEOUT_TRIGGERED")
    assert fired["configuredMs"] == 200.0
    assert 200.0 <= fired["elapsedMs"] < 400.0
    assert fired["elapsedMs"] != fired["configuredMs"]


async def test_total_timeout_reports_elapsed_time() -> None:
    rec = Recorder()
    source = ScriptedSource([Script(["a"], stall_after=1)])
    stream = l0.run(stream=source, timeout=l0.Timeout(total=0.15, inter_token=None),
                    on_event=rec)
    with pytest.raises(l0.L0Error):
        await stream.read()
    (fired,) = rec.of("TIMEOUT_TRIGGERED")
    assert fired["timeoutType"] == "total"
    assert 150.0 < fired["elapsedMs"] < 500.0  # measured, so never exactly the limit


# -- 10. failing over quickly ---------------------------------------------------------------------


async def test_a_failing_model_with_a_fallback_moves_on_after_three_requests() -> None:
    primary = ScriptedSource([Script([], error=ConnectionResetError("reset"), fail_after=0)])
    backup = ScriptedSource([Script(["ok"])])
    rec = Recorder()
    stream = l0.run(stream=primary, fallbacks=[backup], retry=l0.Retry.recommended(),
                    on_event=rec)
    assert await stream.read() == "ok"
    assert primary.calls == 3 and backup.calls == 1
    waited = sum(e["delayMs"] for e in rec.of("RETRY_ATTEMPT"))
    assert waited < 5000.0  # a few seconds of backoff, not ~22 s


async def test_without_a_fallback_the_full_budget_stays() -> None:
    primary = ScriptedSource([Script([], error=ConnectionResetError("reset"), fail_after=0)])
    stream = l0.run(stream=primary, retry=l0.Retry.recommended())
    with pytest.raises(l0.L0Error):
        await stream.read()
    policy = l0.Retry.recommended()
    assert primary.calls == 1 + min(policy.network_attempts, policy.max_retries)


# -- 11. a broken observer is logged once, with its name and traceback ----------------------------


async def test_a_broken_observer_is_logged_once_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        name = "broken-observer"

        def on_event(self, event: l0.ObservabilityEvent) -> None:
            raise RuntimeError("boom")

    stream = l0.run(stream=ScriptedSource([Script(["a", "b"])]), observers=[Broken()])
    with caplog.at_level(logging.WARNING, logger="l0"):
        assert await stream.read() == "ab"
    records = [r for r in caplog.records if "boom" in r.getMessage()]
    assert len(records) == 1
    assert "broken-observer" in records[0].getMessage()
    assert records[0].exc_info is not None  # the traceback
    count = stream.state.callback_errors["observer broken-observer"]
    assert count > 5  # every event of the session failed; only the first was logged


async def test_a_broken_callback_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def on_token(text: str) -> None:
        raise ValueError("bad callback")

    stream = l0.run(stream=ScriptedSource([Script(["a", "b", "c"])]), on_token=on_token)
    with caplog.at_level(logging.WARNING, logger="l0"):
        assert await stream.read() == "abc"
    assert len([r for r in caplog.records if "bad callback" in r.getMessage()]) == 1
    assert stream.state.callback_errors == {"on_token": 3}


# -- 14. the seed README's on_event example works as written --------------------------------------


async def test_seed_on_event_example_prints_tokens_error_and_done(
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = ScriptedSource([Script(["Hel"], fail_after=1), Script(["Hello", "!"])])
    stream = l0.run(
        stream=source,
        on_event=lambda event: print(event.text) if event.is_token
        else print(event.error) if event.is_error
        else print("Done!") if event.is_complete else None,
    )
    await stream.read()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Hel", "ConnectionResetError: connection reset by peer (scripted)",
                     "Hello", "!", "Done!"]


async def test_no_token_observability_events_without_on_event() -> None:
    seen: list[str] = []

    class Observer:
        name = "counting"

        def on_event(self, event: l0.ObservabilityEvent) -> None:
            seen.append(event.type.value)

    await l0.run(stream=ScriptedSource([Script(["a", "b"])]), observers=[Observer()]).read()
    assert "TOKEN" not in seen and "COMPLETE" in seen


async def test_a_factory_can_describe_itself_to_observers() -> None:
    async def tokens() -> AsyncIterator[str]:
        yield "x"

    described: Any = lambda: tokens()  # noqa: E731
    described.l0_source = {"provider": "acme", "model": "m-1", "operation": "chat"}
    rec = Recorder()
    await l0.run(stream=described, fallbacks=[tokens], on_event=rec).read()
    (init,) = rec.of("STREAM_INIT")
    assert init["source"] == {"provider": "acme", "model": "m-1", "operation": "chat"}


async def test_session_end_carries_the_error_the_stream_raised() -> None:
    rec = Recorder()
    failing = ScriptedSource([Script([], error=ConnectionResetError("reset"), fail_after=0)])
    stream = l0.run(stream=failing, fallbacks=[failing], retry=l0.Retry.none(), on_event=rec)
    with pytest.raises(l0.L0Error) as caught:
        await stream.read()
    (end,) = rec.of("SESSION_END")
    assert end["_error"] is caught.value
    assert caught.value.code is l0.ErrorCode.ALL_STREAMS_EXHAUSTED
    ok = Recorder()
    await l0.run(stream=ScriptedSource([Script(["a"])]), on_event=ok).read()
    assert "_error" not in ok.of("SESSION_END")[0].meta


async def test_an_observer_for_every_session_can_be_added_and_removed() -> None:
    from l0_core.runtime.stream import observe_every_session

    seen: list[str] = []

    class Counting:
        name = "counting"

        def on_event(self, event: l0.ObservabilityEvent) -> None:
            if event.type is l0.ObservabilityEventType.SESSION_START:
                seen.append("start")

    mine = Counting()
    remove = observe_every_session(Counting(), unless=lambda given: mine in list(given))
    try:
        await l0.run(stream=ScriptedSource([Script(["a"])])).read()
        assert seen == ["start"]
        await l0.run(stream=ScriptedSource([Script(["a"])]), observers=[mine]).read()
        assert seen == ["start", "start"]  # the session's own, not a second one
    finally:
        remove()
    await l0.run(stream=ScriptedSource([Script(["a"])])).read()
    assert seen == ["start", "start"]


async def test_a_stall_the_source_reports_as_its_own_error_is_still_a_timeout() -> None:
    calls = 0

    async def masks_cancellation() -> AsyncIterator[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:  # as some HTTP clients do
                raise RuntimeError("internal server error") from None
        yield "ok"

    rec = Recorder()
    stream = l0.run(stream=masks_cancellation, timeout=l0.Timeout(initial_token=0.1),
                    on_event=rec)
    assert await stream.read() == "ok"
    assert [e.code for e in stream.errors] == [l0.ErrorCode.INITIAL_TOKEN_TIMEOUT]
    assert isinstance(stream.errors[0].__cause__, RuntimeError)
    assert len(rec.of("TIMEOUT_TRIGGERED")) == 1

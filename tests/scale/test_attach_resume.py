"""l0.attach (the records so far, then the live tail) and l0.resume (a dead worker's
session continued by another one, in the same log), against every store that has them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import l0_core as l0
from l0_core.record import open_store
from l0_core.scale.resume import orphans
from l0_core.testing import Script, ScriptedSource

WORDS = [f"w{i} " for i in range(12)]


async def _until(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _recorded(store: Any, stream_id: str, n: int) -> bool:
    info = await store.info(stream_id)
    return info is not None and info.length >= n


async def test_attach_yields_the_recorded_events_then_the_live_tail(any_store: Any) -> None:
    source = ScriptedSource([Script(WORDS, delay=0.02)])
    stream = l0.run(stream=source, record=any_store)
    reading = asyncio.create_task(stream.read())
    await _until(lambda: _recorded(any_store, stream.id, 1))
    attached = l0.attach(stream.id, store=any_store)
    kinds = [record.type async for record in attached]
    assert await reading == "".join(WORDS)
    assert attached.text == "".join(WORDS) and attached.ended and attached.error is None
    assert kinds == ["token"] * 12 + ["complete"]
    # a client that reconnects from the last seq it saw gets exactly the rest
    everything = [r async for r in l0.attach(stream.id, store=any_store, events="all")]
    assert [r.seq for r in everything] == list(range(len(everything)))
    assert everything[0].type == "session" and everything[-1].type == "SESSION_END"
    middle = everything[len(everything) // 2].seq
    rest = [r async for r in l0.attach(stream.id, store=any_store, from_seq=middle,
                                      events="all")]
    assert rest == everything[middle:]
    assert await l0.attach(stream.id, store=any_store).read() == "".join(WORDS)


async def test_attach_to_a_failed_session_raises_its_error(any_store: Any, instant: None
                                                           ) -> None:
    source = ScriptedSource([Script(["a", "b"], fail_after=1)])
    stream = l0.run(stream=source, record=any_store, retry=l0.Retry(max_retries=0))
    with pytest.raises(l0.L0Error) as failed:
        await stream.read()
    await stream.recording.wait()
    attachment = l0.attach(stream.id, store=any_store)
    with pytest.raises(l0.L0Error) as replayed:
        await attachment.read()
    assert replayed.value.code == failed.value.code
    assert attachment.text == stream.state.content


async def test_attach_gives_up_after_idle_timeout_and_refuses_bad_arguments(any_store: Any
                                                                            ) -> None:
    from l0_core.record import Record

    await any_store.append("stuck", [Record(0, 1.0, "session", {"format": 1}),
                                     Record(1, 2.0, "token", "half")])
    attachment = l0.attach("stuck", store=any_store, idle_timeout=0.2)
    with pytest.raises(l0.L0Error, match=r"no new record for 0\.2 s") as info:
        async for _ in attachment:
            pass
    assert info.value.code is l0.ErrorCode.TIMEOUT and attachment.text == "half"
    start = time.monotonic()
    with pytest.raises(l0.RecordingError, match="no recorded session"):
        await l0.attach("missing", store=any_store, idle_timeout=0.2).read()
    assert time.monotonic() - start < 2.0
    for bad in ({"from_seq": -1}, {"events": "some"}, {"idle_timeout": 0}):
        with pytest.raises(l0.RecordingError):
            l0.attach("stuck", store=any_store, **bad)


# -- resume ---------------------------------------------------------------------------------------


def _resumable(source: ScriptedSource) -> Any:
    def factory(resume: l0.Resume | None) -> Any:
        return source(resume)

    return factory


async def _dead_worker_session(url: str, script: Script, **options: Any) -> tuple[Any, Any]:
    """A session on worker "dead" that stalls mid-stream; the worker then stops beating."""
    dead = open_store(f"{url}&lease=0.3&worker=dead")
    source = ScriptedSource([script])
    stream = l0.run(stream=_resumable(source), record=dead, **options)
    task = asyncio.create_task(stream.read())
    return dead, (stream, task)


async def test_resume_continues_from_the_last_flushed_checkpoint_in_the_same_log(
        shared_url: str) -> None:
    dead, (stream, task) = await _dead_worker_session(
        shared_url, Script(WORDS[:10], stall_after=10), continue_from_last_good_token=True,
        check_intervals=l0.CheckIntervals(checkpoint=4))
    attached = l0.attach(stream.id, store=shared_url, events="all")
    consumer = asyncio.create_task(attached.read())
    await _until(lambda: _text_is(dead, stream.id, "".join(WORDS[:10])))
    dead.kill()
    worker = open_store(f"{shared_url}&worker=b")
    with pytest.raises(l0.RecordingError, match="whose lease is alive"):
        await l0.resume(stream.id, store=worker, stream=lambda: None)
    await asyncio.sleep(0.4)
    assert [o.stream_id for o in await orphans(worker)] == [stream.id]
    source = ScriptedSource([Script(WORDS[8:])])
    resumed = await l0.resume(stream.id, store=worker, stream=_resumable(source))
    assert resumed.kept == "".join(WORDS[:8])  # the last checkpoint: every 4 tokens
    assert resumed.discarded == "".join(WORDS[8:10])
    assert await resumed.read() == "".join(WORDS)
    assert source.resumes[0].checkpoint == "".join(WORDS[:8])
    assert "w7" in source.resumes[0].prompt
    assert await asyncio.wait_for(consumer, 10) == "".join(WORDS)
    task.cancel()  # the "dead" worker's session ends; the fence keeps its end out of the log
    with pytest.raises(asyncio.CancelledError):
        await task
    await stream.recording.wait()
    assert stream.recording.error is not None and "owned by worker" in str(stream.recording.error)
    records = [r async for r in l0.attach(stream.id, store=worker, events="all")]
    assert [r.seq for r in records] == list(range(len(records)))
    assert [r.type for r in records].count("session") == 1
    assert "SESSION_RESUMED" in [r.type for r in records]
    complete = next(r for r in records if r.type == "complete")
    assert complete.data["text"] == "".join(WORDS)
    assert (await worker.info(stream.id)).meta["outcome"] == "completed"
    with pytest.raises(l0.RecordingError, match="not running"):
        await l0.resume(stream.id, store=worker, stream=_resumable(source))


async def _text_is(store: Any, stream_id: str, text: str) -> bool:
    if await store.info(stream_id) is None:
        return False
    records = await store.read(stream_id)
    return "".join(r.data for r in records if r.type == "token") == text


async def test_without_continuation_a_resumed_session_restarts_honestly(shared_url: str
                                                                        ) -> None:
    dead, (stream, task) = await _dead_worker_session(shared_url, Script(WORDS[:5],
                                                                         stall_after=5))
    await _until(lambda: _text_is(dead, stream.id, "".join(WORDS[:5])))
    dead.kill()
    await asyncio.sleep(0.4)
    workers = [open_store(f"{shared_url}&worker={name}") for name in "bc"]
    source = ScriptedSource([Script(["fresh ", "start"])])
    results = await asyncio.gather(
        *(l0.resume(stream.id, store=w, stream=_resumable(source)) for w in workers),
        return_exceptions=True)
    won = [r for r in results if isinstance(r, l0.resume.__globals__["Resumed"])]
    lost = [r for r in results if isinstance(r, l0.RecordingError)]
    assert len(won) == 1 and len(lost) == 1  # two workers never resume the same session
    assert won[0].kept == "" and won[0].discarded == "".join(WORDS[:5])
    assert await won[0].read() == "fresh start"
    assert source.resumes == [None]
    task.cancel()
    attachment = l0.attach(stream.id, store=workers[0])
    kinds = [r.type async for r in attachment]
    assert kinds == ["token"] * 5 + ["discard", "token", "token", "complete"]
    assert attachment.text == "fresh start"


async def test_resume_needs_a_shared_store(tmp_path: Any) -> None:
    with pytest.raises(l0.ConfigError, match="needs a store that workers share"):
        await l0.resume("x", store="memory://", stream=lambda: None)


async def test_a_session_recorded_without_text_restarts_with_a_discard_of_its_length(
        redis_url: str) -> None:
    dead, (stream, task) = await _dead_worker_session(
        redis_url, Script(WORDS[:4], stall_after=4), record_text=False,
        continue_from_last_good_token=True, check_intervals=l0.CheckIntervals(checkpoint=2))

    async def four_tokens() -> bool:
        records = await dead.read(stream.id) if await dead.info(stream.id) else []
        return sum(r.type == "token" for r in records) == 4

    await _until(four_tokens)
    dead.kill()
    await asyncio.sleep(0.4)
    worker = open_store(f"{redis_url}&worker=b")
    source = ScriptedSource([Script(["again"])])
    resumed = await l0.resume(stream.id, store=worker, stream=_resumable(source))
    assert await resumed.read() == "again"
    assert resumed.kept == "" and source.resumes == [None]  # no checkpoint text to go on
    task.cancel()
    await resumed.stream.recording.wait()
    records = await worker.read(stream.id)
    discard = next(r for r in records if r.type == "discard")
    assert discard.data["text"] == {"len": len("".join(WORDS[:4]))}
    assert discard.data["offset"] == 0
    assert [r.type for r in records if r.type == "token"] == ["token"] * 5


async def test_a_last_checkpoint_past_the_flushed_text_resumes_from_the_one_before(
        redis_url: str) -> None:
    # What a worker killed right after the flush at a checkpoint leaves: the recorder writes
    # CHECKPOINT_SAVED before the token that completed it, so the log's last checkpoint
    # ("w0 ".."w7 ") runs one token past its text ("w0 ".."w6 ")
    from l0_core.record import Record

    dead = open_store(f"{redis_url}&lease=0.3&worker=dead")
    log = [Record(0, 1.0, "session", {"format": 1, "continuation": True})]
    for i, word in enumerate(WORDS[:7]):
        log.append(Record(len(log), 2.0, "token", word))
        if i in (2, 6):  # checkpoints of 4 and of 8 tokens, before their 4th and 8th token
            checkpoint = "".join(WORDS[:i + 2])
            log.append(Record(len(log), 2.0, "CHECKPOINT_SAVED",
                              {"checkpoint": checkpoint, "tokenCount": i + 2}))
    await dead.append("cut", log, {"outcome": "running"})
    dead.kill()
    await asyncio.sleep(0.4)
    worker = open_store(f"{redis_url}&worker=b")
    source = ScriptedSource([Script(WORDS[4:])])
    resumed = await l0.resume("cut", store=worker, stream=_resumable(source))
    assert resumed.kept == "".join(WORDS[:4])  # not "": no restart from scratch
    assert resumed.discarded == "".join(WORDS[4:7])
    assert await resumed.read() == "".join(WORDS)
    assert source.resumes[0].checkpoint == "".join(WORDS[:4])
    assert source.resumes[0].token_count == 4
    await resumed.stream.recording.wait()
    assert await l0.attach("cut", store=worker).read() == "".join(WORDS)

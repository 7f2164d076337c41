"""Regressions found in review: what record_text=False leaves out, checkpoints stored as a
count, damaged records, writer threads, row sizes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.cli import main
from l0_core.plugins import config as l0_config
from l0_core.record import MemoryStore, Record, open_store
from l0_core.record import recorder as recorder_module
from l0_core.record import sqlite as sqlite_module
from l0_core.record import store as store_module
from l0_core.record.sqlite import SQLiteStore
from l0_core.record.store import close_stores
from l0_core.testing import Script, ScriptedSource, instant_backoff
from tests.record.support import assert_same, record_and_replay

SECRET = "SECRETXYZ"


def _leaky_rule() -> l0.FunctionRule:
    def check(content: str) -> list[l0.Violation]:
        if content.endswith(f"{SECRET}c"):
            return [l0.Violation("no-second", f"found {content!r}", suggestion=content)]
        return []

    return l0.FunctionRule("no-second", check_complete=check)


def _raw_bytes(folder: Path) -> bytes:
    """Every byte of the store's files (the database, its WAL)."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


async def _all_records(url: str) -> str:
    store = open_store(url)
    out = []
    for info in await store.list():
        out.append(json.dumps(info.to_dict()))
        out.extend(json.dumps(list(r)) for r in await store.read(info.stream_id))
    return "\n".join(out)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_record_text_false_stores_the_secret_nowhere(tmp_path: Path, kind: str) -> None:
    url = "memory://secret" if kind == "memory" else f"sqlite:///{tmp_path}/events.db"
    sources = ScriptedSource([
        Script([f"first {SECRET}a"], fail_after=1,
               error=ConnectionResetError(f"provider says {SECRET}b")),
        Script([f"second {SECRET}c"]),
        Script([f"third {SECRET}d", " done"]),
    ])
    with instant_backoff():
        stream = l0.run(stream=sources, record=url, record_text=False,
                        guardrails=[_leaky_rule()], continue_from_last_good_token=True,
                        check_intervals=l0.CheckIntervals(checkpoint=1),
                        context={"prompt": f"user prompt {SECRET}e"})
        assert (await stream.read()).endswith(f"third {SECRET}d done")
    await stream.recording.wait()
    assert stream.recording.error is None
    stored = await _all_records(url)
    types = [json.loads(line)[2] for line in stored.splitlines()[1:]]
    # the secret was there to leak: in a violation, a provider error, the context
    assert "GUARDRAIL_RULE_RESULT" in types and "NETWORK_ERROR" in types and "error" in types
    assert "CHECKPOINT_SAVED" in types
    assert SECRET not in stored
    assert "SECRET" not in stored
    if kind == "sqlite":
        assert b"SECRET" not in _raw_bytes(tmp_path)


async def test_a_checkpoint_is_stored_as_its_count_and_replayed_with_its_text() -> None:
    url = "memory://checkpoints"
    text = [f"t{i} " for i in range(300)]
    stream = l0.run(stream=ScriptedSource([Script(text)]), record=url,
                    continue_from_last_good_token=True,
                    check_intervals=l0.CheckIntervals(checkpoint=1))
    assert await stream.read() == "".join(text)
    await stream.recording.wait()
    records = await open_store(url).read(stream.id)
    saved = [r.data for r in records if r.type == "CHECKPOINT_SAVED"]
    assert len(saved) == 300 and saved[-1] == {"tokenCount": 300}
    stored = sum(len(json.dumps(list(r))) for r in records)
    assert stored < 40 * len("".join(text))  # was quadratic: every checkpoint held the text

    seen: list[tuple[str, int]] = []

    def on_event(event: l0.ObservabilityEvent) -> None:
        if event.type is l0.ObservabilityEventType.CHECKPOINT_SAVED:
            seen.append((event.meta["checkpoint"], event.meta["tokenCount"]))

    replayed = l0.replay(stream.id, store=url, on_event=on_event)
    assert await replayed.read() == "".join(text)
    assert seen == [("".join(text[:n]), n) for n in range(1, 301)]


# -- the writer thread ---------------------------------------------------------------------------


class _Slow(MemoryStore):
    """A memory store whose appends take a while (a batch stays pending)."""

    def append_sync(self, stream_id: str, records: Sequence[Record],
                    meta: Mapping[str, Any] | None = None) -> None:
        time.sleep(0.2)
        super().append_sync(stream_id, records, meta)


def test_a_closed_event_loop_does_not_kill_the_writer() -> None:
    store = _Slow("memory://slow")

    async def give_up_waiting() -> None:
        stream = l0.run(stream=ScriptedSource([Script(["x"])]), record=store)
        assert await stream.read() == "x"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(stream.recording.wait(), 0.01)

    asyncio.run(give_up_waiting())  # the loop closes while the batch is pending

    async def record_again() -> str:
        stream = l0.run(stream=ScriptedSource([Script(["y"])]), record=store)
        assert await stream.read() == "y"
        await asyncio.wait_for(stream.recording.wait(), 5)
        assert stream.recording.error is None
        return stream.id

    stream_id = asyncio.run(record_again())
    tokens = [r.data for r in asyncio.run(store.read(stream_id)) if r.type == "token"]
    assert tokens == ["y"]


class _Cancelling(MemoryStore):
    """A store without append_sync whose first append raises CancelledError."""

    append_sync = None  # type: ignore[assignment]

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls = 0

    async def append(self, stream_id: str, records: Sequence[Record],
                     meta: Mapping[str, Any] | None = None) -> None:
        self.calls += 1
        if self.calls == 1:
            raise asyncio.CancelledError
        MemoryStore.append_sync(self, stream_id, records, meta)


async def test_a_store_raising_cancelled_error_fails_that_session_only() -> None:
    store = _Cancelling("memory://cancelling")
    first = l0.run(stream=ScriptedSource([Script(["a"])]), record=store)
    assert await first.read() == "a"
    await asyncio.wait_for(first.recording.wait(), 5)
    assert isinstance(first.recording.error, asyncio.CancelledError)
    second = l0.run(stream=ScriptedSource([Script(["b"])]), record=store)
    assert await second.read() == "b"
    await asyncio.wait_for(second.recording.wait(), 5)
    assert second.recording.error is None
    assert [r.data for r in await store.read(second.id) if r.type == "token"] == ["b"]


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _writer_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("l0-writer"))


async def test_idle_writers_end_and_start_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_module, "IDLE_EXIT", 0.05)
    before = _writer_threads()
    stores = [MemoryStore(f"memory://idle{i}") for i in range(10)]
    for store in stores:
        stream = l0.run(stream=ScriptedSource([Script(["a"])]), record=store)
        await stream.read()
        await stream.recording.wait()
    await asyncio.to_thread(_until, lambda: _writer_threads() == before)
    assert not any(id(s) in recorder_module._writers for s in stores)
    # a writer that ended starts again for the next session
    stream = l0.run(stream=ScriptedSource([Script(["b"])]), record=stores[0])
    await stream.read()
    await asyncio.wait_for(stream.recording.wait(), 5)
    assert [r.data for r in await stores[0].read(stream.id) if r.type == "token"] == ["b"]


async def test_closing_the_stores_stops_their_writers(tmp_path: Path) -> None:
    before = _writer_threads()
    for _ in range(3):
        stream = l0.run(stream=ScriptedSource([Script(["a"])]),
                        record=f"sqlite:///{tmp_path}/c.db")
        await stream.read()
        await close_stores()  # written first, then the writer stops
        assert _writer_threads() == before
        assert recorder_module._writers == {}
    infos = await open_store(f"sqlite:///{tmp_path}/c.db").list()
    assert len(infos) == 3 and all(i.meta["outcome"] == "completed" for i in infos)


# -- the SQLite store ----------------------------------------------------------------------------


def _events_source(*events: l0.Event) -> Any:
    async def source() -> AsyncIterator[l0.Event]:
        for event in events:
            yield event

    return source


async def test_sqlite_splits_a_batch_by_size_and_refuses_one_record_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "MAX_ROW_BYTES", 20_000)
    url = f"sqlite:///{tmp_path}/events.db"
    big = [l0.Data("x" * 6000) for _ in range(6)]  # one batch, 36 kB: more than a row
    stream = l0.run(stream=_events_source(l0.Token("a"), *big), adapter="events", record=url)
    assert [e.type.value async for e in stream] == ["token", *["data"] * 6, "complete"]
    await stream.recording.wait()
    assert stream.recording.error is None
    replayed = l0.replay(stream.id, store=url)
    assert [getattr(e, "data", None) async for e in replayed][1:7] == ["x" * 6000] * 6

    huge = l0.run(stream=_events_source(l0.Token("b"), l0.Data("y" * 30_000), l0.Token("c")),
                  adapter="events", record=url)
    assert await huge.read() == "bc"  # the session goes on
    await huge.recording.wait()
    assert isinstance(huge.recording.error, l0.RecordingError)
    assert "more than the 20000 a row may hold" in huge.recording.error.message
    # its batch was refused whole; the store stays readable
    assert await open_store(url).info(huge.id) is None
    assert len(await open_store(url).read(stream.id)) == (await open_store(url).info(
        stream.id)).length  # type: ignore[union-attr]


def _many_rows(path: Path, n: int) -> None:
    """A session of ``n`` rows of one record each (as ``n`` one-token batches leave it)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO events VALUES ('s', ?, 1, '[[1.0, \"token\", \"t\"]]')",
                         [(i,) for i in range(n)])
        conn.execute("INSERT INTO streams VALUES ('s', ?, 1.0, 1.0, '{}')", (n,))
    conn.close()


def _steps(store: SQLiteStore, from_seq: int) -> int:
    """SQLite's virtual-machine steps (in thousands) of one read."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn = store._connection()
    conn.set_progress_handler(count, 1000)
    try:
        assert [r.seq for r in store.read_sync("s", from_seq, 2)] == [from_seq, from_seq + 1]
    finally:
        conn.set_progress_handler(None, 0)
    return steps[0]


async def test_sqlite_reads_from_a_seq_without_scanning_the_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    await open_store(url).list()  # the schema
    await asyncio.to_thread(_many_rows, tmp_path / "events.db", 20_000)
    store = SQLiteStore(url)
    near_end = await asyncio.to_thread(_steps, store, 19_990)
    whole = await asyncio.to_thread(_steps, store, 0)  # (reads 2 rows: a few steps)
    # the rows before from_seq - ROW_RECORDS are not visited (they were: 20 000 rows)
    assert near_end < whole + 60
    assert await store.read("s", 20_000) == []
    await store.close()


async def test_sqlite_notices_a_damaged_count_and_a_missing_tail(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    await store.append("s", [Record(i, 1.0, "token", "t") for i in range(10)])
    await store.append("s", [Record(i, 1.0, "token", "t") for i in range(10, 20)])
    await store.close()
    await asyncio.to_thread(_sql, path, "UPDATE events SET count = -3 WHERE seq = 10")
    with pytest.raises(l0.RecordingError, match="count -3 is damaged"):
        await SQLiteStore(url).read("s")
    await asyncio.to_thread(_sql, path, "DELETE FROM events WHERE seq = 10")
    with pytest.raises(l0.RecordingError, match=r"records 10\.\.19 are missing"):
        await SQLiteStore(url).read("s")
    assert len(await SQLiteStore(url).read("s", 0, 10)) == 10  # the prefix still reads


def _sql(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()


def _modes(top: Path) -> list[int]:
    return [stat.S_IMODE(p.stat().st_mode) for p in (top / "a", top / "a" / "b")]


async def test_every_new_directory_is_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a/b/events.db"
    await open_store(url).append("s", [Record(0, 1.0, "session", {})])
    assert await asyncio.to_thread(_modes, tmp_path) == [0o700, 0o700]


@pytest.mark.parametrize("url", ["sqlite://x.db", "sqlite:///"])
async def test_a_bad_sqlite_url_is_a_config_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(l0.ConfigError, match=r"SQLite store URL|names no file"):
        l0.run(stream=ScriptedSource([Script(["a"])]), record=url)
    with pytest.raises(l0.ConfigError, match="L0_STORE: key 'store'"):
        l0_config.load(environ={"L0_STORE": url})


# -- the store contract --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("bad", [
    [Record(0, 1.0, "data", object())],
    [Record(0, 1.0, "data", {1: "key not a str"})],
    [Record(0, float("nan"), "token", "a")],
    [Record(0, 1.0, "data", {"x": float("inf")})],
    [("a",)],
])
async def test_stores_refuse_what_is_not_a_json_record(tmp_path: Path, kind: str,
                                                       bad: list[Any]) -> None:
    store = MemoryStore() if kind == "memory" else SQLiteStore(f"sqlite:///{tmp_path}/e.db")
    with pytest.raises(l0.RecordingError):
        await store.append("s", bad)
    assert await store.info("s") is None  # nothing was stored
    await store.append("s", [Record(0, 1.0, "token", "ok")])
    assert [r.data for r in await store.read("s")] == ["ok"]
    for call in (lambda: store.read("s", "x"), lambda: store.read("s", -1),  # type: ignore[arg-type]
                 lambda: store.read("s", 0, "2"), lambda: store.expire("x")):  # type: ignore[arg-type]
        with pytest.raises(l0.RecordingError):
            await call()
    await store.close()


# -- l0 sessions and replay on damaged records -----------------------------------------------------

_HEADER = Record(0, 1.0, "session", {"format": 1})


async def _damaged(url: str) -> None:
    store = open_store(url)
    await store.append("good", [_HEADER, Record(1, 2.0, "token", "fine")], {"outcome": "completed"})
    await store.append("bigstart", [_HEADER, Record(1, 2.0, "token", "a")],
                       {"started": 1e20, "duration_ms": "x"})
    await store.append("badoff", [_HEADER, Record(1, 2.0, "discard", {"offset": "abc"})])
    await store.append("baddelay", [_HEADER, Record(1, 2.0, "RETRY_ATTEMPT",
                                                    {"delayMs": "soon"})])
    await store.close()


def test_one_damaged_session_never_hides_the_others(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/e.db"
    asyncio.run(_damaged(url))
    assert main(["sessions", "list", "--store", url]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(listed) == {"good", "bigstart", "badoff", "baddelay"}
    assert "completed" in listed["good"] and "?" in listed["bigstart"]
    for bad, why in (("badoff", "offset is 'abc'"), ("baddelay", "'soon'")):
        for extra in ([], ["--json"]):
            assert main(["sessions", "show", bad, "--store", url, *extra]) == 1
            captured = capsys.readouterr()
            assert f"record 1 ({'discard' if bad == 'badoff' else 'RETRY_ATTEMPT'!r}) is " \
                   f"malformed" in captured.err and why in captured.err
    assert main(["sessions", "show", "good", "--store", url]) == 0
    assert "fine" in capsys.readouterr().out


@pytest.mark.parametrize(("data", "kind"), [
    ({"text": "x", "offset": "abc"}, "discard"),
    ({"attempt": None}, "ATTEMPT_START"),
    ({"tokenCount": [1]}, "CHECKPOINT_SAVED"),
    ({"id": "c", "name": "f", "arguments": {}, "index": "z"}, "tool_call"),
    ({"toIndex": {}}, "FALLBACK_START"),
])
async def test_a_malformed_record_is_a_recording_error_in_replay(data: Any, kind: str) -> None:
    store = MemoryStore()
    await store.append("s", [_HEADER, Record(1, 2.0, kind, data)])
    with pytest.raises(l0.RecordingError, match="not a count"):
        await l0.replay("s", store=store).read()


async def test_session_export_pages_through_a_long_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore("memory://long")
    await store.append("s", [_HEADER, *(Record(i, 2.0, "token", "t") for i in range(1, 5000))])
    reads: list[Any] = []
    original = MemoryStore.read

    async def counted(self: MemoryStore, stream_id: str, from_seq: int = 0,
                      limit: int | None = None) -> list[Record]:
        reads.append(limit)
        return await original(self, stream_id, from_seq, limit)

    monkeypatch.setattr(MemoryStore, "read", counted)
    monkeypatch.setattr(store_module, "_open", {"memory://long": store})
    command = ["sessions", "export", "s", "--store", "memory://long"]
    assert await asyncio.to_thread(main, command) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5000
    assert reads and None not in reads  # in pages, never the whole session at once


# -- replay's arguments and timing ---------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"drift": "bogus"}, {"drift": 123}, {"speed": float("nan")}, {"speed": float("inf")},
    {"on_token": 5}, {"on_event": "x"}, {"max_gap": -1},
])
def test_replay_refuses_bad_arguments_at_once(kwargs: dict[str, Any]) -> None:
    with pytest.raises(l0.ConfigError):
        l0.replay("s", store=MemoryStore(), **kwargs)


async def _gap_session() -> MemoryStore:
    store = MemoryStore()
    stream = l0.run(stream=ScriptedSource([Script(["a", "b"])]), record=store)
    await stream.read()
    await stream.recording.wait()
    records = await store.read(stream.id)
    first = next(r.seq for r in records if r.type == "token")
    moved = [r if r.seq <= first else r._replace(ts=r.ts + 1e15) for r in records]
    gap = MemoryStore()
    await gap.append("s", moved)
    return gap


async def test_a_long_recorded_gap_is_capped_and_abort_ends_it() -> None:
    store = await _gap_session()
    started = time.monotonic()
    assert await l0.replay("s", store=store, speed=1, max_gap=0.2).read() == "ab"
    assert 0.2 <= time.monotonic() - started < 3
    replayed = l0.replay("s", store=store, speed=1, max_gap=60)
    reading = asyncio.ensure_future(replayed.read())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    replayed.abort()
    with pytest.raises(l0.L0Error) as info:
        await asyncio.wait_for(reading, 5)
    assert info.value.code is l0.ErrorCode.STREAM_ABORTED and time.monotonic() - started < 1


class _Held(MemoryStore):
    """A memory store that writes nothing until released."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.release = threading.Event()

    def append_sync(self, stream_id: str, records: Sequence[Record],
                    meta: Mapping[str, Any] | None = None) -> None:
        self.release.wait(10)
        super().append_sync(stream_id, records, meta)


async def test_pending_memory_is_bounded_by_size_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_module, "MAX_PENDING_BYTES", 1_000_000)
    store = _Held("memory://held")
    tokens = ["x" * 100_000] * 40  # 4 MB of text in 40 events: far below MAX_PENDING
    stream = l0.run(stream=ScriptedSource([Script(tokens)]), record=store)
    assert len(await stream.read()) == 4_000_000
    writer = recorder_module.writer_for(store)
    assert writer.submitted_bytes - writer.written_bytes <= 1_000_000
    store.release.set()
    await stream.recording.wait()
    assert stream.recording.dropped > 0
    records = await store.read(stream.id)
    assert records[-1].type == "dropped" and [r.seq for r in records] == list(range(len(records)))


async def test_the_header_records_the_configured_adapter() -> None:
    cfg = l0_config.load(environ={"L0_ADAPTER": "text"})
    stream = l0.run(stream=ScriptedSource([Script(["a"])]), record="memory://adapter",
                    config=cfg)
    assert await stream.read() == "a"
    await stream.recording.wait()
    header = (await open_store("memory://adapter").read(stream.id, 0, 1))[0]
    assert header.type == "session" and header.data["adapter"] == "text"


class Picture(l0.Data):
    """A media-like subclass of Data (as Image and Audio are)."""

    __slots__ = ("id", "mime_type", "partial")

    def __init__(self, data: Any, mime_type: str, partial: bool = False,
                 id: str | None = None) -> None:
        self.data, self.mime_type, self.partial, self.id = data, mime_type, partial, id


async def test_data_subclasses_and_bytes_replay_identically(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from l0_core import events

    monkeypatch.setattr(events, "Picture", Picture, raising=False)
    source = _events_source(
        l0.Token("pic:"), Picture("aGVsbG8=", "image/png", partial=True, id="p1"),
        Picture(b"\x89PNG\x00\xff", "image/png", id="p1"), l0.Data({"raw": b"\x00\x01"}))
    live, again, _ = await record_and_replay("memory://media", stream=source,
                                             adapter="events")
    assert_same(live, again)
    assert again.events[2] == ("data", "Picture", {
        "data": {"$bytes": "iVBORwD/"}, "id": "p1", "mime_type": "image/png",
        "partial": False})
    assert again.events[3][2]["data"] == {"raw": {"$bytes": "AAE="}}


async def test_replayed_bytes_are_bytes() -> None:
    stream = l0.run(stream=_events_source(l0.Data(b"\x00\x01"),
                                          Picture(b"\x02", "image/png")),
                    adapter="events", record="memory://bytes")
    await stream.read()
    await stream.recording.wait()
    data = [e async for e in l0.replay(stream.id, store="memory://bytes") if e.is_data]
    assert data[0].data == b"\x00\x01" and type(data[1]) is l0.Data  # Picture is not in events

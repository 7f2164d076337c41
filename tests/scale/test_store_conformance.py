"""The store protocol, the same tests over all four stores: memory, SQLite, Redis, PostgreSQL.

The Redis and PostgreSQL stores run against real servers (``conftest.py``); the last
tests cover what only the shared stores add: the live tail, leases and claims, the
fence, failure counters and cooldowns.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import l0_core as l0
from l0_core.record import Record, Store, open_store
from l0_core.scale.shared import SharedStore, shared, wait_for_records


def _records(start: int, n: int, kind: str = "token") -> list[Record]:
    return [Record(i, 1000.0 + i, kind, f"t{i}") for i in range(start, start + n)]


async def test_append_read_info_list_delete(any_store: Any) -> None:
    store = any_store
    assert isinstance(store, Store)
    await store.append("a", [Record(0, 1.0, "session", {"format": 1}), *_records(1, 3)],
                       {"model": "m", "outcome": "running"})
    await store.append("a", _records(4, 2), {"outcome": "completed"})
    await store.append("b", _records(0, 1))
    records = await store.read("a")
    assert [r.seq for r in records] == [0, 1, 2, 3, 4, 5]
    assert records[0] == Record(0, 1.0, "session", {"format": 1})
    assert [r.data for r in records[1:]] == ["t1", "t2", "t3", "t4", "t5"]
    assert [r.seq for r in await store.read("a", 4)] == [4, 5]
    assert [r.seq for r in await store.read("a", 2, limit=2)] == [2, 3]
    assert await store.read("a", 6) == []
    info = await store.info("a")
    assert info is not None
    assert (info.stream_id, info.length) == ("a", 6)
    assert info.meta == {"model": "m", "outcome": "completed"}  # merged, not replaced
    assert info.created <= info.updated
    assert await store.info("missing") is None
    assert {i.stream_id for i in await store.list()} == {"a", "b"}
    assert [i.stream_id for i in await store.list(limit=1)] == ["b"]  # the latest first
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    with pytest.raises(l0.RecordingError, match="no recorded session 'a'"):
        await store.read("a")


async def test_a_batch_that_does_not_continue_the_log_is_refused_whole(any_store: Any) -> None:
    store = any_store
    await store.append("s", _records(0, 3))
    for wrong in (_records(2, 2), _records(4, 1), [*_records(3, 1), *_records(5, 1)]):
        with pytest.raises(l0.RecordingError, match="does not follow") as info:
            await store.append("s", wrong)
        assert info.value.code is l0.ErrorCode.RECORDING_ERROR
    with pytest.raises(l0.RecordingError, match="does not follow"):
        await store.append("new", _records(1, 1))  # a new stream starts at seq 0
    assert await store.info("new") is None
    assert [r.seq for r in await store.read("s")] == [0, 1, 2]  # nothing of them was kept
    await store.append("s", _records(3, 1))
    assert (await store.info("s")).length == 4


async def test_long_logs_read_in_pages_and_from_inside_a_batch(any_store: Any) -> None:
    store = any_store
    seq = 0
    for size in (1, 700, 3, 1200, 5):  # batches larger than a row, and many of them
        await store.append("long", [Record(i, float(i), "token", f"<{i}>")
                                    for i in range(seq, seq + size)])
        seq += size
    for _ in range(80):
        await store.append("long", _records(seq, 1))
        seq += 1
    records = await store.read("long")
    assert [r.seq for r in records] == list(range(seq))
    assert records[1500].data == "<1500>"
    assert [r.seq for r in await store.read("long", 702, limit=3)] == [702, 703, 704]
    assert [r.seq for r in await store.read("long", seq - 2)] == [seq - 2, seq - 1]


async def test_json_values_round_trip_and_what_json_cannot_hold_is_refused(any_store: Any
                                                                            ) -> None:
    store = any_store
    data = {"text": "naïve — ✓", "n": [1, 2.5, None, True], "nested": {"a": {"b": []}}}
    await store.append("j", [Record(0, 1.5, "data", data)], {"context": {"user": "ü"}})
    (record,) = await store.read("j")
    assert record == Record(0, 1.5, "data", data)
    assert (await store.info("j")).meta == {"context": {"user": "ü"}}
    if store.url.startswith("memory"):
        return  # the memory store keeps the objects themselves
    with pytest.raises(l0.RecordingError, match="JSON"):
        await store.append("j", [Record(1, 2.0, "data", {"x": object()})])
    assert (await store.info("j")).length == 1


async def test_expire_removes_streams_not_updated_for_a_while(any_store: Any) -> None:
    store = any_store
    await store.append("old", _records(0, 1))
    await asyncio.sleep(0.3)
    await store.append("new", _records(0, 1))
    assert await store.expire(0.15) == 1
    assert [i.stream_id for i in await store.list()] == ["new"]
    assert await store.expire(3600) == 0


async def test_waiting_for_records_returns_when_they_come_or_at_the_timeout(any_store: Any
                                                                            ) -> None:
    store = any_store
    await store.append("w", _records(0, 2))
    start = time.monotonic()
    await wait_for_records(store, "w", 1, 5.0)  # already there: at once
    assert time.monotonic() - start < 1.0
    start = time.monotonic()
    await wait_for_records(store, "w", 2, 0.2)  # nothing comes: the timeout
    assert 0.15 < time.monotonic() - start < 1.5

    async def later() -> None:
        await asyncio.sleep(0.2)
        await store.append("w", _records(2, 1))

    task = asyncio.create_task(later())
    start = time.monotonic()
    await wait_for_records(store, "w", 2, 10.0)
    assert 0.15 < time.monotonic() - start < 2.0
    await task
    await wait_for_records(store, "unknown", 0, 0.05)  # an unknown stream just waits


async def test_only_the_shared_stores_coordinate_workers(any_store: Any) -> None:
    if any_store.url.startswith(("memory", "sqlite")):
        assert not isinstance(any_store, SharedStore)
        with pytest.raises(l0.ConfigError, match="needs a store that workers share"):
            shared(any_store, "l0.resume")
    else:
        assert shared(any_store, "l0.resume") is any_store


# -- what the shared stores add ------------------------------------------------------------------


async def test_a_claim_takes_a_dead_workers_running_session_exactly_once(shared_url: str
                                                                         ) -> None:
    dead = open_store(f"{shared_url}&lease=0.3&worker=dead")
    a, b = open_store(f"{shared_url}&worker=a"), open_store(f"{shared_url}&worker=b")
    assert isinstance(dead, SharedStore) and isinstance(a, SharedStore)
    assert isinstance(b, SharedStore)
    await dead.append("s", _records(0, 2), {"outcome": "running"})
    await dead.append("done", _records(0, 1), {"outcome": "completed"})
    assert await a.holder("s") == (dead.owner, True)
    assert await a.claim("s") is False  # its worker is alive
    dead.kill()  # no heartbeat any more, the lease not given up
    await asyncio.sleep(0.5)
    assert await a.holder("s") == (dead.owner, False)
    assert await a.claim("done") is False  # finished sessions are never claimed
    assert await a.claim("unknown") is False
    won = await asyncio.gather(*(store.claim("s") for store in (a, b, a, b)))
    assert sorted(won) == [False, False, False, True]
    winner, loser = (a, b) if await a.holder("s") == (a.owner, True) else (b, a)
    # the fence: only the new owner appends; the old one and the loser are refused
    for other in (dead, loser):
        with pytest.raises(l0.RecordingError, match="owned by worker"):
            await other.append("s", _records(2, 1))
    await winner.append("s", _records(2, 1), {"outcome": "completed"})
    assert [r.seq for r in await winner.read("s")] == [0, 1, 2]


async def test_a_closed_worker_gives_its_lease_up_at_once(shared_url: str) -> None:
    first = open_store(f"{shared_url}&worker=first")
    other = open_store(f"{shared_url}&worker=other")
    await first.append("s", _records(0, 1), {"outcome": "running"})
    assert await other.claim("s") is False
    await first.close()
    assert await other.claim("s") is True


async def test_failures_are_counted_in_a_window_and_cooldowns_expire(shared_url: str) -> None:
    a, b = open_store(f"{shared_url}&worker=a"), open_store(f"{shared_url}&worker=b")
    assert [await s.count_failure("gpt", 0.4) for s in (a, b, a)] == [1, 2, 3]
    assert await b.count_failure("other", 0.4) == 1
    await asyncio.sleep(0.5)
    assert await a.count_failure("gpt", 0.4) == 1  # a new window
    assert await a.cooling(["gpt", "other"]) == {}
    await a.cool("gpt", 0.4)
    left = await b.cooling(["gpt", "other"])
    assert list(left) == ["gpt"] and 0.1 < left["gpt"] <= 0.4
    assert await b.count_failure("gpt", 5.0) == 1  # cooling restarted the count
    await asyncio.sleep(0.5)
    assert await b.cooling(["gpt"]) == {}


async def test_bad_urls_are_clear_errors(shared_url: str) -> None:
    with pytest.raises(l0.ConfigError, match="lease"):
        open_store(f"{shared_url}&lease=soon")
    with pytest.raises(l0.ConfigError, match="lease must be positive"):
        open_store(f"{shared_url}&lease=0")


async def test_the_heartbeat_keeps_a_worker_alive_beyond_its_lease(shared_url: str) -> None:
    worker = open_store(f"{shared_url}&lease=0.3&worker=busy")
    other = open_store(f"{shared_url}&worker=other")
    worker.append_sync("s", _records(0, 1), {"outcome": "running"})  # as the writer thread
    for _ in range(6):
        await asyncio.sleep(0.15)
        assert await other.holder("s") == (worker.owner, True)
        assert await other.claim("s") is False


async def test_the_stores_are_plugins_enabled_by_url_in_configuration(
        redis_url: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from l0_core.plugins import config as l0_config
    from l0_core.plugins.host import get_host
    from l0_core.record import store_schemes

    assert {"redis", "rediss", "unix", "postgresql", "postgres"} <= set(store_schemes())
    plugins = {p.name: p.distribution for p in get_host().records if p.status == "loaded"}
    assert plugins["redis"] == "l0-store-redis"
    assert plugins["postgresql"] == "l0-store-postgres"
    for url in (redis_url, postgres_url):
        monkeypatch.setenv("L0_STORE", url)
        l0_config.set_config(None)
        stream = l0.run(stream=lambda: _words(), record=True)
        assert await stream.read() == "a b"
        await stream.recording.wait()
        assert type(stream.recording.store).__name__ in ("RedisStore", "PostgresStore")
        assert stream.recording.store.url == url
        info = await stream.recording.store.info(stream.id)
        assert info is not None and info.meta["outcome"] == "completed"
    l0_config.set_config(None)


async def _words() -> Any:
    for word in ("a", " b"):
        yield word

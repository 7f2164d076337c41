"""Several processes recording to one SQLite file; a process killed while it records."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import l0_core as l0
from l0_core.record import open_store

ROOT = Path(__file__).resolve().parents[2]


def _worker(url: str, sessions: int, tokens: int, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.record.worker", url, str(sessions), str(tokens), str(delay)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
async def test_two_processes_record_to_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    workers = [_worker(url, 8, 300, 0.0005) for _ in range(2)]
    outputs = [await asyncio.to_thread(w.communicate, timeout=60) for w in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert out.splitlines()[-1] == "done"
    ids = [line for out, _ in outputs for line in out.splitlines()[:-1]]
    assert len(set(ids)) == 16
    store = open_store(url)
    infos = {i.stream_id: i for i in await store.list(limit=100)}
    assert set(infos) == set(ids), [err for _, err in outputs]
    expected = "".join(f"t{i} " for i in range(300))
    for stream_id in ids:
        assert infos[stream_id].meta["outcome"] == "completed"
        assert infos[stream_id].meta["tokens"] == 300
        records = await store.read(stream_id)
        assert [r.seq for r in records] == list(range(len(records)))
        assert await l0.replay(stream_id, store=url).read() == expected
    await store.close()


@pytest.mark.slow
async def test_a_process_killed_while_recording_leaves_a_readable_prefix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/killed.db"
    worker = _worker(url, 1, 100_000, 0.0002)
    assert worker.stdout is not None
    stream_id = (await asyncio.to_thread(worker.stdout.readline)).strip()
    store = open_store(url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until a good part of the session is stored
        info = await store.info(stream_id)
        if info is not None and info.length > 600:
            break
        await asyncio.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    await asyncio.to_thread(worker.wait, 10)
    assert worker.returncode == -signal.SIGKILL
    info = await store.info(stream_id)
    assert info is not None and info.meta["outcome"] == "running"
    records = await store.read(stream_id)
    assert len(records) == info.length > 600
    assert [r.seq for r in records] == list(range(len(records)))  # contiguous from 0
    assert records[0].type == "session"
    texts = [r.data for r in records if r.type == "token"]
    assert texts == [f"t{i} " for i in range(len(texts))]  # a prefix of the session
    replayed = l0.replay(stream_id, store=url)
    got = []
    with pytest.raises(l0.RecordingError, match="ends before the session did"):
        async for event in replayed:
            got.append(event.text)  # noqa: PERF401 (what came before the error)
    assert got == texts
    await store.close()

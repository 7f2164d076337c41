"""What recording costs: ``python bench/record.py`` (``--quick`` for a smoke run).

Everything runs in one process and one event loop; every ratio compares numbers
measured in the same rounds (rotated order, ``gc.collect()`` before each run,
medians). Sections 1 and 3 time the process's CPU time, every thread's (the
writer thread's work counts: under the GIL it is work the stream waits for), since
on a shared machine wall time mostly measures the neighbours (``--clock wall``
times wall time); section 2 is a rate in wall time:

1. per token - ``l0.run`` over a pre-built list of ``str`` tokens, and of
   provider-shaped chunks through an adapter, without recording (the baseline),
   recording to ``memory://`` and to a SQLite file (and to ``memory://`` with
   ``record_timing="token"``, each token's own time). Two times for each: the event
   loop thread's CPU time until the consumer's loop ends (``loop``: what
   recording costs the loop; the writer thread works alongside), and the whole
   process's until the recording is stored (``until stored``: every thread's
   work, ``await stream.recording.wait()`` included);
2. SQLite events per second - batches of token records appended straight to the
   store (``append_sync``, what the writer thread does), and whole sessions
   recorded through ``l0.run`` (``--sessions`` concurrent ones);
3. replay - ``l0.replay(id, speed=0)`` of the recorded session, from memory and
   from SQLite, against running it live.

Needs only ``l0_core`` and the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

try:
    import l0_core as l0
except ImportError:  # run from a clone without installing: use the clone's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import l0_core as l0
from l0_core.record import Record, open_store
from l0_core.record.sqlite import SQLiteStore
from l0_core.testing import FakeChunkAdapter, chunks

Runner = Callable[[], Awaitable[float]]

# What is timed: the process's CPU time (every thread, the writer's too) by default. On a
# shared machine wall time mostly measures the neighbours; ``--clock wall`` measures it.
clock = time.process_time


def _tokens(n: int) -> list[str]:
    words = ("the", " model", " streams", " tokens", ",", " and", " L0", " records", " them",
             ".", " JSON", " {\"a\":", " 1}", " markdown", " **bold**")
    return [words[(i * 7) % len(words)] + ("" if i % 5 else " ") for i in range(n)]


def _source(tokens: list[Any]) -> Any:
    async def gen() -> AsyncIterator[str]:
        for token in tokens:
            yield token

    return gen


async def _consume(stream: Any) -> None:
    async for _ in stream:
        pass


def _live(tokens: list[Any], record: Any, until_stored: bool, adapter: Any = None,
          timing: str = "tick") -> Runner:
    """One session; timed until the consumer's loop ends (with the CPU clock: the event
    loop thread's CPU time, what recording costs the loop) or until it is stored (the
    process's CPU time, the writer thread's work included)."""
    timer = clock if until_stored or clock is time.perf_counter else time.thread_time

    async def once() -> float:
        start = timer()
        stream = l0.run(stream=_source(tokens), record=record, adapter=adapter,
                        record_timing=timing)
        await _consume(stream)
        if until_stored and stream.recording is not None:
            await stream.recording.wait()
        return timer() - start

    return once


async def _rounds(runners: dict[str, Runner], rounds: int) -> dict[str, list[float]]:
    names = list(runners)
    for name in names:  # warm-up
        await runners[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            gc.collect()
            await asyncio.sleep(0)
            samples[name].append(await runners[name]())
    return samples


async def per_token(n: int, rounds: int, folder: Path, kind: str) -> dict[str, Any]:
    """``kind``: ``str`` tokens, or ``chunks`` (provider-shaped objects through an adapter)."""
    items: list[Any] = _tokens(n)
    adapter = None
    if kind == "chunks":
        items, adapter = chunks(items), FakeChunkAdapter()
    sqlite_url = f"sqlite:///{folder}/per-token-{kind}.db"
    base_name = f"l0-core-{kind} (no recording)"
    runners = {
        base_name: _live(items, False, False, adapter),
        base_name + ", loop": _live(items, False, False, adapter),
        "recording to memory://, loop": _live(items, "memory://bench", False, adapter),
        "recording to memory://, until stored": _live(items, "memory://bench", True, adapter),
        "recording to sqlite://, loop": _live(items, sqlite_url, False, adapter),
        "recording to sqlite://, until stored": _live(items, sqlite_url, True, adapter),
        "memory://, record_timing=token, loop": _live(items, "memory://bench", False, adapter,
                                                       "token"),
        "memory://, record_timing=token, until stored": _live(items, "memory://bench", True,
                                                               adapter, "token"),
    }
    samples = await _rounds(runners, rounds)
    rows = []
    for name, times in samples.items():
        # "loop" rows against the loop's own time without recording, the others against
        # the whole process's
        base = statistics.median(samples[base_name + ", loop" if "loop" in name else base_name])
        median = statistics.median(times)
        rows.append({"name": name, "ns_per_token": median / n * 1e9,
                     "min_ns_per_token": min(times) / n * 1e9, "ratio": median / base,
                     "added_ns_per_token": (median - base) / n * 1e9})
    await open_store("memory://bench").expire(0)
    return {"tokens": n, "rounds": rounds, "kind": kind, "rows": rows}


async def sqlite_rate(n: int, sessions: int, folder: Path) -> dict[str, Any]:
    store = SQLiteStore(f"sqlite:///{folder}/rate.db")
    records = [Record(i, 1.0e12 + i, "token", f" tok{i % 100}") for i in range(n)]
    batch = 256
    start = time.perf_counter()  # (wall time: a rate)
    for i in range(0, n, batch):
        store.append_sync("direct", records[i:i + batch])
    direct = time.perf_counter() - start
    await store.close()
    tokens = _tokens(n // sessions)
    url = f"sqlite:///{folder}/sessions.db"

    async def one() -> int:
        stream = l0.run(stream=_source(tokens), record=url)
        await _consume(stream)
        await stream.recording.wait()
        return stream.recording.writer.store is not None

    await one()  # warm-up: the file and the writer thread exist
    stored_before = sum(i.length for i in await open_store(url).list(limit=10_000))
    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(sessions)))
    through = time.perf_counter() - start
    stored = sum(i.length for i in await open_store(url).list(limit=10_000)) - stored_before
    await open_store(url).close()
    return {"direct": {"events": n, "batch": batch, "seconds": direct,
                       "events_per_s": n / direct},
            "through_l0_run": {"sessions": sessions, "events": stored, "seconds": through,
                               "events_per_s": stored / through}}


async def replay_speed(n: int, rounds: int, folder: Path) -> dict[str, Any]:
    tokens = _tokens(n)
    ids: dict[str, str] = {}
    for url in ("memory://replay", f"sqlite:///{folder}/replay.db"):
        stream = l0.run(stream=_source(tokens), record=url)
        await _consume(stream)
        await stream.recording.wait()
        ids[url] = stream.id

    def replayer(url: str) -> Runner:
        async def once() -> float:
            start = clock()
            await _consume(l0.replay(ids[url], store=url))
            return clock() - start

        return once

    urls = list(ids)
    runners = {"live l0.run (no recording)": _live(tokens, False, False),
               "replay from memory://": replayer(urls[0]),
               "replay from sqlite://": replayer(urls[1])}
    samples = await _rounds(runners, rounds)
    base = statistics.median(samples["live l0.run (no recording)"])
    await open_store(urls[1]).close()
    return {"tokens": n, "rows": [
        {"name": name, "ns_per_token": statistics.median(t) / n * 1e9,
         "ratio": statistics.median(t) / base} for name, t in samples.items()]}


def _print(results: dict[str, Any]) -> None:
    for pt in results["per_token"]:
        print(f"Per token ({pt['tokens']} {pt['kind']} tokens, {pt['rounds']} rounds; ratio to "
              f"no recording, ns added per token)")
        for row in pt["rows"]:
            print(f"  {row['name']:<46} {row['ns_per_token']:>8.0f} ns  {row['ratio']:>5.2f}x"
                  f"  {row['added_ns_per_token']:>+7.0f} ns")
    rate = results["sqlite"]
    d, s = rate["direct"], rate["through_l0_run"]
    print("SQLite events written per second")
    print(f"  {'append_sync, batches of ' + str(d['batch']):<40} {d['events_per_s']:>10,.0f}/s")
    print(f"  {str(s['sessions']) + ' concurrent sessions via l0.run':<40} "
          f"{s['events_per_s']:>10,.0f}/s")
    rp = results["replay"]
    print(f"Replay ({rp['tokens']} tokens, speed=0; ratio to the live run)")
    for row in rp["rows"]:
        print(f"  {row['name']:<46} {row['ns_per_token']:>8.0f} ns  {row['ratio']:>5.2f}x")


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in a few seconds")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per session")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="time the process's CPU time (default) or wall time")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", type=Path, help="also write the JSON there")
    args = parser.parse_args(argv)
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    n = args.tokens or (2_000 if args.quick else 20_000)
    rounds = args.rounds or (3 if args.quick else 15)
    sessions = args.sessions or (10 if args.quick else 100)
    with tempfile.TemporaryDirectory(prefix="l0-bench-record-") as tmp:
        folder = Path(tmp)
        results = {
            "meta": {"python": sys.version.split()[0], "l0_core": l0.__version__,
                     "quick": args.quick, "clock": args.clock},
            "per_token": [await per_token(n, rounds, folder, "str"),
                          await per_token(n, rounds, folder, "chunks")],
            "sqlite": await sqlite_rate(n * 5, sessions, folder),
            "replay": await replay_speed(n, rounds, folder),
        }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    asyncio.run(main())

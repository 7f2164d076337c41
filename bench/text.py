"""Benchmarks of L0's long-document helpers: ``python bench/text.py`` (``--quick`` for a smoke run).

1. windowing - ``l0.Window.create`` over a 1 MB document, per strategy, next to one pass of
   the estimate tokenizer over the same text (the floor of any token-counted window) and
   ``str.split()`` (the floor of reading the text at all);
2. process_all - the per-chunk cost of ``window.process_all`` (tasks, the concurrency limit,
   results in order) next to running the same chunks through ``l0.run`` one after another
   and through ``asyncio.gather`` of ``l0.run`` reads: the difference is what process_all
   adds per chunk.

Everything runs in one process; rounds alternate the rows, ``gc.collect()`` before each
timed run; medians over the rounds. Only ``l0_core`` and the standard library are needed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

try:
    import l0_core as l0
except ImportError:  # run from a clone without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import l0_core as l0
from l0_core.text.tokenizers import EstimateTokenizer
from l0_core.text.window import Chunk

HERE = Path(__file__).resolve().parent
CHAPTER = HERE.parent / "tests" / "text" / "data" / "alice-chapter-1.txt"


def _document(size: int) -> str:
    text = CHAPTER.read_text(encoding="utf-8")
    return (text * (size // len(text) + 1))[:size]


async def _rounds(samplers: dict[str, Callable[[], Awaitable[float]]], rounds: int
                  ) -> dict[str, float]:
    """Median seconds of each sampler; every round runs each once, the order rotated."""
    names = list(samplers)
    for name in names:  # warm-up
        await samplers[name]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            out[name].append(await samplers[name]())
    return {name: statistics.median(v) for name, v in out.items()}


def _sync(fn: Callable[[], Any]) -> Callable[[], Awaitable[float]]:
    async def sample() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return sample


async def windowing(size: int, rounds: int) -> dict[str, Any]:
    doc = _document(size)
    est = EstimateTokenizer()
    samplers = {
        "str.split (floor)": _sync(doc.split),
        "estimate count (floor)": _sync(lambda: est.count(doc)),
    }
    chunks: dict[str, int] = {}
    for strategy, n, overlap in (("token", 2000, 200), ("char", 8000, 800),
                                 ("sentence", 2000, 200), ("paragraph", 2000, 200)):
        def make(strategy: str = strategy, n: int = n, overlap: int = overlap) -> None:
            w = l0.Window.create(doc, size=n, overlap=overlap, strategy=strategy,
                                 tokenizer="estimate")
            chunks[strategy] = len(w)

        samplers[f"Window {strategy} {n}/{overlap}"] = _sync(make)
    medians = await _rounds(samplers, rounds)
    floor = medians["estimate count (floor)"]
    rows = [{"name": name, "ms": ms * 1000.0, "ratio": ms / floor,
             "chunks": chunks.get(name.split()[1]) if name.startswith("Window") else None}
            for name, ms in medians.items()]
    return {"bytes": len(doc.encode()), "rows": rows}


async def process(n_chunks: int, tokens: int, rounds: int) -> dict[str, Any]:
    doc = " ".join(f"Sentence number {i} of the document." for i in range(n_chunks * 10))
    window = l0.Window.create(doc, size=60, overlap=0, tokenizer="estimate")
    pieces = ["tok "] * tokens
    expected = "".join(pieces)

    async def answer(chunk: Chunk) -> AsyncIterator[str]:
        for piece in pieces:
            yield piece

    def factory(chunk: Chunk) -> Callable[[], AsyncIterator[str]]:
        return lambda: answer(chunk)

    async def sequential() -> float:
        t0 = time.perf_counter()
        for chunk in window:
            assert await l0.run(stream=factory(chunk)).read() == expected
        return time.perf_counter() - t0

    async def gathered() -> float:
        t0 = time.perf_counter()
        limit = asyncio.Semaphore(4)

        async def one(chunk: Chunk) -> str:
            async with limit:
                return await l0.run(stream=factory(chunk)).read()

        texts = await asyncio.gather(*(one(c) for c in window))
        assert texts == [expected] * len(window)
        return time.perf_counter() - t0

    async def processed() -> float:
        t0 = time.perf_counter()
        results = await window.process_all(answer, concurrency=4)
        assert [r.text for r in results] == [expected] * len(window)
        return time.perf_counter() - t0

    medians = await _rounds({"l0.run one by one": sequential,
                             "gather(l0.run), 4 at a time": gathered,
                             "process_all, concurrency 4": processed}, rounds)
    n = len(window)
    base = medians["l0.run one by one"] / n * 1e6
    rows = [{"name": name, "us_per_chunk": s / n * 1e6, "overhead_us": s / n * 1e6 - base}
            for name, s in medians.items()]
    return {"chunks": n, "tokens_per_chunk": tokens, "rows": rows}


def report(res: dict[str, Any]) -> str:
    w = res["windowing"]
    lines = [f"1. Windowing a {w['bytes'] / 1e6:.1f} MB document (median ms; ratio to one "
             f"estimate-tokenizer pass)", ""]
    lines += [f"  {r['name']:<30} {r['ms']:9.2f} ms  {r['ratio']:6.2f}x"
              + (f"  ({r['chunks']} chunks)" if r["chunks"] else "") for r in w["rows"]]
    p = res["process"]
    lines += ["", f"2. process_all: {p['chunks']} chunks of {p['tokens_per_chunk']} tokens "
              f"(median µs per chunk; overhead over l0.run one by one)", ""]
    lines += [f"  {r['name']:<30} {r['us_per_chunk']:9.1f} µs  {r['overhead_us']:+8.1f} µs"
              for r in p["rows"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, 3 rounds")
    parser.add_argument("--out", help="write the JSON here")
    args = parser.parse_args()
    size, rounds, n_chunks = (100_000, 3, 20) if args.quick else (1_000_000, 11, 200)

    async def go() -> dict[str, Any]:
        return {"meta": {"quick": args.quick, "python": sys.version.split()[0]},
                "windowing": await windowing(size, rounds),
                "process": await process(n_chunks, 20, rounds)}

    res = asyncio.run(go())
    print(report(res))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

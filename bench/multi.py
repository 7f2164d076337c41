"""Benchmarks of ``l0_core.multi``: ``python bench/multi.py`` (``--quick`` for a smoke run).

1. **parallel overhead** - 1 000 tasks, each a 20-token stream that yields to the loop
   every 5 tokens, run through ``l0.parallel(tasks, concurrency=1000)`` against plain
   ``asyncio.gather`` of ``l0.run(stream=task).read()`` over the same streams (the floor:
   the same sessions without the orchestration), and with ``concurrency=50``.
2. **consensus similarity** - the pairwise similarity of 5 outputs of 10 000 characters
   (4 near-copies and one dissenting text): ``difflib.SequenceMatcher.ratio()`` (what the
   existing L0 uses) as it is (``autojunk`` on, which on long texts treats every letter
   as junk and finds near copies 0.4 % alike) and as an exact alignment
   (``autojunk=False``, quadratic: with ``--quick`` one pair is timed and the matrix
   extrapolated), against L0's word-bag measure, and the whole ``l0.consensus`` over the
   five outputs; then L0's measure at 10 times the text, to show it stays linear.

One process, one event loop; rounds interleaved, medians (minima in brackets).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

try:
    import l0_core as l0
except ImportError:  # run from a clone without installing: use the clone's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import l0_core as l0
from l0_core.multi.similarity import SimilarityIndex


def vocabulary(size: int = 5000, seed: int = 7) -> list[str]:
    """Pseudo-words of 1-4 syllables; drawn with Zipf weights they look like prose to a
    bag of words (a few very common words, a long tail)."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
            for _ in range(size)]


WORDS = vocabulary()
ZIPF = [1.0 / (rank + 1) for rank in range(len(WORDS))]


# -- 1. parallel ------------------------------------------------------------------------------


def _factory(n_tokens: int) -> Callable[[], AsyncIterator[str]]:
    async def stream() -> AsyncIterator[str]:
        for i in range(n_tokens):
            if i % 5 == 0:
                await asyncio.sleep(0)  # a "network read": the streams really interleave
            yield "tok "

    return stream


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    gc.collect()
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def bench_parallel(tasks: int, tokens: int, rounds: int) -> dict[str, Any]:
    factories = [_factory(tokens) for _ in range(tasks)]
    expected = "tok " * tokens

    async def gather_floor() -> None:
        texts = await asyncio.gather(*(l0.run(stream=f).read() for f in factories))
        assert texts[0] == texts[-1] == expected

    async def parallel_all() -> None:
        results = await l0.parallel(factories, concurrency=tasks)
        assert results.all_succeeded and results[-1].text == expected

    async def parallel_50() -> None:
        results = await l0.parallel(factories, concurrency=50)
        assert results.all_succeeded and results[0].text == expected

    rows: dict[str, Callable[[], Awaitable[None]]] = {
        "gather(l0.run)": gather_floor,
        f"parallel(concurrency={tasks})": parallel_all,
        "parallel(concurrency=50)": parallel_50,
    }
    times = await _rounds(rows, rounds)
    floor = statistics.median(times["gather(l0.run)"])
    out = []
    for name, samples in times.items():
        med = statistics.median(samples)
        out.append({"name": name, "median_s": med, "min_s": min(samples),
                    "ratio": med / floor, "overhead_us_per_task": (med - floor) / tasks * 1e6})
    return {"tasks": tasks, "tokens": tokens, "rounds": rounds, "rows": out}


async def _rounds(rows: dict[str, Callable[[], Awaitable[None]]],
                  rounds: int) -> dict[str, list[float]]:
    names = list(rows)
    for name in names:  # warm-up
        await rows[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            times[name].append(await _timed(rows[name]))
    return times


# -- 2. consensus ---------------------------------------------------------------------------------


def outputs(chars: int, seed: int = 14) -> list[str]:
    """Five texts of about ``chars`` characters: a base text, three copies with ~3 % of the
    words changed, one unrelated text."""
    rng = random.Random(seed)

    def text() -> list[str]:
        words: list[str] = []
        size = 0
        while size < chars:
            batch = rng.choices(WORDS, ZIPF, k=256)
            words.extend(batch)
            size += sum(map(len, batch)) + len(batch)
        while size > chars and words:
            size -= len(words.pop()) + 1
        return words

    base = text()
    variants = []
    for _ in range(3):
        copy = list(base)
        for i in rng.sample(range(len(copy)), len(copy) // 30):
            copy[i] = rng.choices(WORDS, ZIPF)[0]
        variants.append(copy)
    return [" ".join(w) for w in (base, *variants, text())]


def _difflib_matrix(texts: Sequence[str], autojunk: bool,
                    pairs: int | None = None) -> list[list[float]]:
    """The pairwise ``SequenceMatcher.ratio()`` matrix (only the first ``pairs`` pairs)."""
    n = len(texts)
    m = [[1.0] * n for _ in range(n)]
    todo = [(i, j) for i in range(n) for j in range(i + 1, n)][:pairs]
    for i, j in todo:
        m[i][j] = m[j][i] = difflib.SequenceMatcher(None, texts[i], texts[j],
                                                    autojunk=autojunk).ratio()
    return m


def _best_of(fn: Callable[[], Any], rounds: int) -> tuple[float, float, Any]:
    samples, value = [], None
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        value = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), min(samples), value


async def bench_consensus(chars: int, rounds: int, exact_pairs: int | None) -> dict[str, Any]:
    """``exact_pairs``: how many pairs difflib without autojunk aligns (``None``: all); its
    time for the whole matrix is extrapolated from them."""
    texts = outputs(chars)
    n_pairs = len(texts) * (len(texts) - 1) // 2
    d_med, d_min, d_matrix = _best_of(lambda: _difflib_matrix(texts, True), rounds)
    done = n_pairs if exact_pairs is None else min(exact_pairs, n_pairs)
    e_time, _, e_matrix = _best_of(lambda: _difflib_matrix(texts, False, done), 1)
    l_med, l_min, index = _best_of(lambda: SimilarityIndex(texts), rounds)

    async def run_consensus() -> Any:
        tasks = [_value(t) for t in texts]
        return await l0.consensus(tasks)

    samples = []
    result = None
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        result = await run_consensus()
        samples.append(time.perf_counter() - t0)
    assert result is not None and result.status == "success" and result.consensus in texts[:4]
    assert len(result.disagreements) == 1 and result.disagreements[0].values[0][0] == 4
    big = outputs(chars * 10, seed=15)
    b_med, _, _ = _best_of(lambda: SimilarityIndex(big), max(1, rounds // 2))
    exact_s = e_time * n_pairs / done
    return {
        "outputs": len(texts), "chars": chars, "pairs": n_pairs,
        "difflib_s": d_med, "difflib_min_s": d_min,
        "difflib_exact_s": exact_s, "difflib_exact_pairs_timed": done,
        "l0_s": l_med, "l0_min_s": l_min, "speedup_vs_exact": exact_s / l_med,
        "consensus_s": statistics.median(samples),
        "l0_s_at_10x": b_med, "growth_10x": b_med / l_med,
        "difflib_near_copy": d_matrix[0][1], "difflib_exact_near_copy": e_matrix[0][1],
        "l0_near_copy": index.matrix[0][1],
        "difflib_dissent": d_matrix[0][4], "l0_dissent": index.matrix[0][4],
    }


def _value(text: str) -> Callable[[], Awaitable[str]]:
    async def task() -> str:
        return text

    return task


# -- main ---------------------------------------------------------------------------------------


def _table(data: dict[str, Any]) -> str:
    p, c = data["parallel"], data["consensus"]
    lines = [f"Parallel: {p['tasks']} tasks of {p['tokens']} tokens, {p['rounds']} rounds",
             f"  {'row':32} {'median ms':>12} {'ratio':>7} {'us/task over floor':>20}"]
    lines.extend(f"  {row['name']:32} {row['median_s'] * 1e3:8.1f} "
                 f"[{row['min_s'] * 1e3:.1f}] {row['ratio']:6.2f}x "
                 f"{row['overhead_us_per_task']:14.1f}" for row in p["rows"])
    lines += [
        f"Consensus: {c['outputs']} outputs of {c['chars']} characters ({c['pairs']} pairs)",
        f"  difflib ratio (autojunk)       {c['difflib_s'] * 1e3:10.1f} ms  "
        f"(near copies {c['difflib_near_copy']:.3f} alike: its junk heuristic drops "
        f"every letter)",
        f"  difflib ratio (autojunk=False) {c['difflib_exact_s'] * 1e3:10.1f} ms  "
        f"(near copies {c['difflib_exact_near_copy']:.3f}; "
        f"{c['difflib_exact_pairs_timed']} of {c['pairs']} pairs timed)",
        f"  l0 similarity matrix           {c['l0_s'] * 1e3:10.2f} ms  "
        f"({c['speedup_vs_exact']:.0f}x faster than the exact alignment)",
        f"  l0.consensus (end to end)      {c['consensus_s'] * 1e3:10.2f} ms",
        f"  l0 similarity at 10x the text  {c['l0_s_at_10x'] * 1e3:10.2f} ms  "
        f"(x{c['growth_10x']:.1f}: linear is x10)",
        f"  l0: near copies {c['l0_near_copy']:.3f} alike, the dissenting text "
        f"{c['l0_dissent']:.3f}",
    ]
    return "\n".join(lines)


async def main_async(quick: bool) -> dict[str, Any]:
    tasks = 200 if quick else 1000
    rounds = 3 if quick else 9
    return {
        "meta": {"quick": quick, "python": sys.version.split()[0]},
        "parallel": await bench_parallel(tasks, 20, rounds),
        "consensus": await bench_consensus(10_000, 3 if quick else 7, 1 if quick else None),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="a smoke run (200 tasks, few rounds)")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    args = p.parse_args(argv)
    data = asyncio.run(main_async(args.quick))
    if args.out is not None:
        args.out.write_text(json.dumps(data, indent=2), encoding="utf-8")
    print(json.dumps(data, indent=2) if args.json else _table(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Structured output benchmark: ``python bench/structured.py`` (``--quick`` for a smoke run).

Two sections, each measured side by side in one process:

1. repair - ``l0.repair_json`` next to the ``json_repair`` package (when installed) on a
   corpus of broken documents written for this benchmark: does each give the expected
   value, do they agree; then the time to repair a broken 1 KB and 100 KB document;
2. stream - the cost per token of ``l0.structured_stream`` (typed partial objects, then
   the validated object) next to ``l0.run`` with no options, over the same pre-built
   tokens of a JSON document, at two lengths: the ratio to ``l0.run`` and how flat the
   cost is from the short to the long stream.

Method: warm-up first; rounds in which every contender runs once, in an order rotated each
round; ``gc.collect()`` before each timed run; medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

try:
    import l0_core as l0
except ImportError:  # run from a clone without installing: use the clone's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import l0_core as l0

# -- the corpus: (name, broken text, the value it should repair to) -----------------------------

CORPUS: list[tuple[str, str, Any]] = [
    ("fence", '```json\n{"a": 1, "b": [true, null]}\n```', {"a": 1, "b": [True, None]}),
    ("fence-unclosed", '```json\n{"a": 1}', {"a": 1}),
    ("prose-around", 'Sure! Here is the data: {"name": "Ann", "age": 31}. Anything else?',
     {"name": "Ann", "age": 31}),
    ("prose-and-fence", 'Result:\n```\n[1, 2, 3]\n```\nDone.', [1, 2, 3]),
    ("line-comment", '{\n  "a": 1, // the first\n  "b": 2\n}', {"a": 1, "b": 2}),
    ("block-comment", '{"a": /* note */ 1}', {"a": 1}),
    ("url-in-string", '{"url": "http://example.com/a//b", "n": 1} // end',
     {"url": "http://example.com/a//b", "n": 1}),
    ("trailing-commas", '{"a": [1, 2, 3,], "b": {"c": 1,},}', {"a": [1, 2, 3], "b": {"c": 1}}),
    ("single-quotes", "{'name': 'Bob', 'tags': ['x', 'y']}", {"name": "Bob", "tags": ["x", "y"]}),
    ("quote-inside-single", "{'text': 'say \"hi\"'}", {"text": 'say "hi"'}),
    ("unquoted-keys", '{name: "Cy", age: 5}', {"name": "Cy", "age": 5}),
    ("python-literals", '{"a": True, "b": False, "c": None}', {"a": True, "b": False, "c": None}),
    ("js-literals", '{"a": NaN, "b": Infinity, "c": undefined}', {"a": None, "b": None, "c": None}),
    ("newline-in-string", '{"poem": "roses\nviolets"}', {"poem": "roses\nviolets"}),
    ("tab-in-string", '{"t": "a\tb"}', {"t": "a\tb"}),
    ("unclosed-string", '{"name": "Dee', {"name": "Dee"}),
    ("nested-unclosed", '{"a": {"b": [1, {"c": "x"}', {"a": {"b": [1, {"c": "x"}]}}),
    ("wrong-closer", '{"a": [1, 2}', {"a": [1, 2]}),
    ("cut-after-key", '{"a": 1, "b":', {"a": 1}),
    ("cut-in-key", '{"a": 1, "bc', {"a": 1}),
    ("cut-after-comma", "[1, 2,", [1, 2]),
    ("cut-in-literal", '{"a": [true, fal', {"a": [True]}),
    ("missing-comma", '{"a": 1\n"b": 2}', {"a": 1, "b": 2}),
    ("valid", '{"a": [1, 2.5, "x", null], "b": {}}', {"a": [1, 2.5, "x", None], "b": {}}),
    # the hard cases: where a naive repair corrupts data
    ("fence-in-string", '```json\n{"code": "```python\\nprint(1)\\n```", "n": 2}\n```',
     {"code": "```python\nprint(1)\n```", "n": 2}),
    ("fence-word-in-string", 'Here:\n```json\n{"md": "use ``` fences", "n": 2}\n```',
     {"md": "use ``` fences", "n": 2}),
    ("inner-double-quotes", '{"a": "He said "hi" to me", "n": 2}',
     {"a": 'He said "hi" to me', "n": 2}),
    ("apostrophe-in-single", "{'text': 'it's fine', 'n': 2}", {"text": "it's fine", "n": 2}),
    ("stray-closer-comma", "[1,}2]", [1, 2]),
    ("stray-closer-in-object", '{"a": 1,]"b": 2}', {"a": 1, "b": 2}),
    ("leading-comma", '{,"a": 1}', {"a": 1}),
    ("hex-number", '{"a": 0x1F, "b": 3}', {"a": "0x1F", "b": 3}),
    ("date-unquoted", '{"d": 2024-01-01, "b": 3}', {"d": "2024-01-01", "b": 3}),
    ("thousands", '{"price": 1,000, "qty": 3}', {"price": "1,000", "qty": 3}),
    ("version-unquoted", '{"v": 1.2.3, "b": 3}', {"v": "1.2.3", "b": 3}),
    ("bracket-in-prose", 'See [1] for details: {"a": 1}', {"a": 1}),
    ("byte-order-mark", '\ufeff{"a": 1}', {"a": 1}),
]


def _ours(text: str) -> Any:
    return json.loads(l0.repair_json(text).text)


# The expected value of a non-number kept as text is a string (nothing is invented or cut);
# json_repair may decide otherwise (a number, or null): counted as a difference, not an error.


def _json_repair() -> Callable[[str], Any] | None:
    try:
        import json_repair
    except ImportError:
        return None

    def theirs(text: str) -> Any:
        return json.loads(json_repair.repair_json(text))

    return theirs


def _attempt(fn: Callable[[str], Any], text: str) -> tuple[bool, Any]:
    try:
        return True, fn(text)
    except Exception as exc:
        return False, repr(exc)


def corpus_agreement() -> dict[str, Any]:
    theirs = _json_repair()
    rows = []
    for name, text, expected in CORPUS:
        ok_ours, ours = _attempt(_ours, text)
        row: dict[str, Any] = {"name": name, "ours_expected": ok_ours and ours == expected}
        if theirs is not None:
            ok_theirs, value = _attempt(theirs, text)
            row["theirs_expected"] = ok_theirs and value == expected
            row["agree"] = ok_ours and ok_theirs and value == ours
        rows.append(row)
    summary = {"documents": len(rows),
               "ours_expected": sum(r["ours_expected"] for r in rows)}
    if theirs is not None:
        summary["theirs_expected"] = sum(r["theirs_expected"] for r in rows)
        summary["agree"] = sum(r["agree"] for r in rows)
    return {"rows": rows, "summary": summary, "json_repair": theirs is not None}


def broken_document(size: int) -> str:
    """A broken document of about ``size`` characters: a fence and prose around it,
    single quotes, Python literals, comments, trailing commas, and a cut tail."""
    parts = ["Here is the data you asked for:\n```json\n{'items': ["]
    i = 0
    while sum(map(len, parts)) < size:
        parts.append(
            f"{{'id': {i}, name: 'item {i}', 'ok': {'True' if i % 2 else 'None'}, "
            f"'tags': ['a', 'b',], // item {i}\n 'note': \"line\\n{i}\"}},\n"
        )
        i += 1
    text = "".join(parts)
    return text[:size]


def _median_us(fn: Callable[[], Any], rounds: int) -> float:
    fn()
    samples = []
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def repair_speed(quick: bool) -> list[dict[str, Any]]:
    theirs = _json_repair()
    rows = []
    for label, size in (("1 KB", 1_000), ("100 KB", 100_000)):
        text = broken_document(size)
        rounds = 5 if quick else (201 if size < 10_000 else 15)
        row: dict[str, Any] = {"input": label, "chars": len(text),
                               "ours_us": _median_us(partial(l0.repair_json, text), rounds)}
        if theirs is not None:
            row["theirs_us"] = _median_us(partial(theirs, text), rounds)
            row["speedup"] = row["theirs_us"] / row["ours_us"]
        rows.append(row)
    return rows


# -- structured_stream per token ------------------------------------------------------------------


class Item(BaseModel):
    id: int
    name: str
    score: float
    tags: list[str]


class Catalog(BaseModel):
    title: str
    items: list[Item]


def catalog_tokens(n: int) -> list[str]:
    """About ``n`` tokens of 4 characters of one Catalog document."""
    tokens = ['{"title": "bench", "items": [']
    i = 0
    while len(tokens) < n - 1:
        piece = json.dumps({"id": i, "name": f"item {i}", "score": i / 7, "tags": ["a", "b"]})
        piece = (", " if i else "") + piece
        tokens.extend(piece[k:k + 4] for k in range(0, len(piece), 4))
        i += 1
    tokens.append("]}")
    return tokens


def _source(tokens: Sequence[str]) -> Callable[[], AsyncIterator[str]]:
    async def source() -> AsyncIterator[str]:
        for t in tokens:
            yield t

    return source


async def _run_core(tokens: Sequence[str]) -> int:
    n = 0
    async for _ in l0.run(stream=_source(tokens)):
        n += 1
    return n


GAPS: dict[str, dict[int, int]] = {}  # the largest gap between objects, in tokens


async def _run_structured(tokens: Sequence[str], interval: float | None = None) -> int:
    n = 0
    final: Any = None
    options: dict[str, Any] = {} if interval is None else {"partial_interval": interval}
    stream = l0.structured_stream(Catalog, _source(tokens), **options)
    at, gap = 0, 0
    async for item in stream:
        n += 1
        final = item
        count = len(stream.state.parts)
        gap, at = max(gap, count - at), count
    assert isinstance(final, Catalog) and final.items, "the final object is missing"
    name = "structured_stream" if interval is None else "structured_stream, no rate limit"
    GAPS.setdefault(name, {})[len(tokens)] = gap
    return n


async def _run_structured_unlimited(tokens: Sequence[str]) -> int:
    return await _run_structured(tokens, 0.0)


async def stream_cost(sizes: Sequence[int], rounds: int) -> dict[str, Any]:
    contenders = {"l0.run core": _run_core, "structured_stream": _run_structured,
                  "structured_stream, no rate limit": _run_structured_unlimited}
    out: dict[str, Any] = {"sizes": list(sizes), "rows": {}}
    partials: dict[str, dict[int, int]] = {}
    for n in sizes:
        tokens = catalog_tokens(n)
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for fn in contenders.values():  # warm-up
            await fn(tokens)
        names = list(contenders)
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                gc.collect()
                t0 = time.perf_counter()
                count = await contenders[name](tokens)
                samples[name].append((time.perf_counter() - t0) / len(tokens) * 1e9)
                partials.setdefault(name, {})[n] = count
        for name, values in samples.items():
            out["rows"].setdefault(name, {})[str(n)] = statistics.median(values)
    core = out["rows"]["l0.run core"]
    lo, hi = str(min(sizes)), str(max(sizes))
    out["ratio"], out["flatness"], out["objects_yielded"] = {}, {}, {}
    for name in names[1:]:
        st = out["rows"][name]
        out["ratio"][name] = {k: st[k] / core[k] for k in st}
        out["flatness"][name] = st[hi] / st[lo]
        out["objects_yielded"][name] = {str(k): v for k, v in partials[name].items()}
    out["largest_gap_tokens"] = {name: {str(k): v for k, v in gaps.items()}
                                 for name, gaps in GAPS.items()}
    return out


# -- the report -----------------------------------------------------------------------------------


def report(res: dict[str, Any]) -> str:
    lines = ["Repair: the corpus (expected value / agreement)"]
    summary = res["corpus"]["summary"]
    line = f"  {summary['documents']} documents; l0.repair_json gives the expected value for " \
           f"{summary['ours_expected']}"
    if res["corpus"]["json_repair"]:
        line += f", json_repair for {summary['theirs_expected']}; they agree on " \
                f"{summary['agree']}"
    lines.append(line)
    lines.extend(
        f"    {row['name']}: ours {'ok' if row['ours_expected'] else 'WRONG'}, json_repair "
        f"{'ok' if row.get('theirs_expected') else 'wrong'}"
        for row in res["corpus"]["rows"]
        if not row["ours_expected"] or not row.get("agree", True)
    )
    lines.append("Repair: speed (median)")
    for row in res["repair"]:
        extra = (f"  json_repair {row['theirs_us']:9.1f} us  ({row['speedup']:.1f}x faster)"
                 if "theirs_us" in row else "  (json_repair not installed)")
        lines.append(f"  {row['input']:>6}: l0 {row['ours_us']:9.1f} us{extra}")
    st = res["stream"]
    lines.append("structured_stream: ns per token (median)")
    for name, values in st["rows"].items():
        cells = "  ".join(f"{k:>6} tokens {v:7.0f}" for k, v in values.items())
        lines.append(f"  {name:33} {cells}")
    for name, ratio in st["ratio"].items():
        ratios = "  ".join(f"{k}: {v:.2f}x" for k, v in ratio.items())
        lines.append(f"  {name}: ratio to l0.run core {ratios}; flatness (long/short) "
                     f"{st['flatness'][name]:.2f}; objects yielded "
                     f"{st['objects_yielded'][name]}; largest gap (tokens) "
                     f"{st['largest_gap_tokens'].get(name)}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")]
    rounds = args.rounds or (3 if args.quick else 15)
    return {
        "meta": {"quick": args.quick, "python": sys.version.split()[0]},
        "corpus": corpus_agreement(),
        "repair": repair_speed(args.quick),
        "stream": await stream_cost(sizes, rounds),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run in a few seconds")
    parser.add_argument("--sizes", default=None, help="stream lengths (default 2000,20000)")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the results as JSON there")
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = "200,2000" if args.quick else "2000,20000"
    res = asyncio.run(main_async(args))
    print(report(res))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

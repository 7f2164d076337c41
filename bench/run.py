"""L0's benchmark suite: ``python bench/run.py`` (``--quick`` for a smoke run).

Everything runs in one process and one event loop, so every ratio compares
numbers measured side by side:

1. throughput - ns/token over pre-built token lists (str and OpenAI-shaped
   chunks) at two stream lengths, for the raw floors, L0 at each feature level
   (``FEATURES``) and optional contenders; the ratio to the matching raw floor
   and how flat the per-token cost is in N;
2. the same for the guardrail levels on one kind of content at a time (prose,
   one line of JSON, markdown);
3. time to first token and the fixed cost of a session (1-token streams);
4. peak memory of one stream (tracemalloc), the source building each item as
   it is read, so only what is retained counts;
5. concurrency - many streams at once through ``asyncio.gather``;
6. hostile deltas - each rule given a whole pathological text as one delta, at
   two sizes: per-character cost must not grow with it;
7. cold import - ``import l0_core`` next to ``import pydantic``, each in fresh
   interpreters (the one section that leaves the process).

Method (sections 1-6): warm-up runs first; then rounds in which every contender
runs once, in an order rotated each round; ``gc.collect()`` before each timed
run; medians (and minima) over the rounds. Each contender's output is checked against the
expected text before timing and after every timed run.

Only ``l0_core`` and the standard library are needed. Contenders that need
another package (``openai``, ``ai2070-l0``) run when it is installed and are
listed as skipped, with the reason, otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

try:
    import l0_core as l0
except ImportError:  # run from a clone without installing: use the clone's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import l0_core as l0
from l0_core.guardrails.drift import create_detector
from l0_core.guardrails.rule import create_rules
from l0_core.testing import FakeChunk, FakeChunkAdapter, chunks

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# ---------------------------------------------------------------------------------------------
# Feature levels: the extension point. Each entry is a set of ``l0.run`` keyword arguments; the
# throughput section runs one L0 row per level and stream kind (``l0-<level>-str`` and
# ``l0-<level>-chunks``). Add guardrails, drift... here as they land, and give a level a ratio
# budget in ``RATIO_BUDGET`` once one is agreed.
# ---------------------------------------------------------------------------------------------


def _ignore_token(text: str) -> None:
    return None


FEATURES: dict[str, dict[str, Any]] = {
    "core": {},
    "checkpoints": {"continue_from_last_good_token": True},
    "callbacks": {"on_token": _ignore_token},
    "recommended": {"guardrails": l0.Guardrails.recommended()},
    "full": {
        "guardrails": l0.Guardrails.recommended(),
        "drift": True,
        "continue_from_last_good_token": True,
    },
}

# Budgets, reported next to the numbers (never asserted).


def _sentry_level() -> dict[str, dict[str, Any]]:
    """The ``sentry`` level when l0-sentry is installed: its observer on every session, with a
    Sentry client that sends nowhere (``_init_sentry``). It works per session, never per token."""
    if importlib.util.find_spec("l0_sentry") is None:
        return {}
    return {"sentry": {"observers": ["sentry"]}}


FEATURES.update(_sentry_level())


def _otel_level() -> dict[str, dict[str, Any]]:
    """The ``otel`` level when l0-otel and the OpenTelemetry SDK are installed: its observer
    on every session, recording into SDK providers (``_init_otel``). Per session only."""
    if importlib.util.find_spec("l0_otel") is None or importlib.util.find_spec(
            "opentelemetry.sdk") is None:
        return {}
    return {"otel": {"observers": ["otel"]}}


FEATURES.update(_otel_level())


def _init_sentry() -> None:
    """An active Sentry client (errors and tracing on, ``L0Integration``) whose transport
    drops every envelope, as an application that uses Sentry has."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    from l0_sentry import L0Integration

    class _Nowhere(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            return None

    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=_Nowhere,
                    traces_sample_rate=1.0, default_integrations=False,
                    integrations=[L0Integration()])


def _init_otel() -> None:
    """Global SDK providers, as an application that uses OpenTelemetry has: every span
    sampled and handed to an exporter that drops it, every metric aggregated in memory."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class _Nowhere(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Nowhere()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


RATIO_BUDGET: dict[str, float] = {  # ns/token of the row <= budget x its raw floor
    "core": 3.0,
    "recommended": 4.0,
    "full": 6.0,
}
FLAT_BUDGET = 1.2  # ns/token at the largest N <= 1.2 x ns/token at the smallest N
MEMORY_FLAT_BUDGET = 1.2  # peak bytes/token at the largest N <= 1.2 x at the smallest N

# Each timed run reads a different token stream from the one before (the variants are read in
# turn), so that nothing that remembers text it has seen - a cache keyed by deltas - looks
# faster than it would on new output.
VARIANTS = 3

CONCURRENCY_BURST = 10  # the concurrent sources yield to the loop once per this many tokens


@dataclass(frozen=True)
class Settings:
    quick: bool
    sizes: tuple[int, ...]
    warmup: int
    rounds: dict[int, int]  # per N
    session_batch: int  # 1-token sessions per timed sample
    session_rounds: int
    memory_repeats: int
    streams: int
    stream_tokens: int
    concurrency_rounds: int
    features: tuple[str, ...]
    sections: tuple[str, ...]
    seed: int
    variants: int  # different token streams per size, read in turn (no replayed text)
    import_runs: int  # fresh interpreters per row of the import section


def _settings(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    else:
        sizes = (200, 2_000) if quick else (2_000, 20_000)
    if len(sizes) < 1 or any(n < 1 for n in sizes):
        raise SystemExit("--sizes: give positive token counts, e.g. 2000,20000")
    sizes = tuple(sorted(set(sizes)))
    features = tuple(args.features.split(",")) if args.features else tuple(FEATURES)
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise SystemExit(f"--features: unknown {unknown}; known: {list(FEATURES)}")
    if "core" not in features:
        features = ("core", *features)
    sections = tuple(args.sections.split(",")) if args.sections else tuple(SECTIONS)
    unknown = [x for x in sections if x not in SECTIONS]
    if unknown:
        raise SystemExit(f"--sections: unknown {unknown}; known: {list(SECTIONS)}")

    def rounds_for(n: int) -> int:
        if args.rounds:
            return int(args.rounds)
        if quick:
            return 3
        return max(21, min(101, 200_000 // n + 1))  # 101 rounds at 2 000, 21 at 20 000

    return Settings(
        quick=quick,
        sizes=sizes,
        warmup=1 if quick else 3,
        rounds={n: rounds_for(n) for n in sizes},
        session_batch=20 if quick else 400,
        session_rounds=3 if quick else 31,
        memory_repeats=1 if quick else 3,
        streams=50 if quick else 1_000,
        stream_tokens=50 if quick else 200,
        concurrency_rounds=2 if quick else 11,
        features=features,
        sections=sections,
        seed=int(args.seed),
        variants=2 if quick else VARIANTS,
        import_runs=5 if quick else 15,
    )


# ---------------------------------------------------------------------------------------------
# Tokens: a seeded generator of BPE-like pieces (~5 characters on average) cut from prose,
# one-line JSON and markdown.
# ---------------------------------------------------------------------------------------------

_WORD_LIST = (
    "the of and to a in is that for it as with was on be by this are from at or an have not "
    "which but can will we you they its if all one more when there each only into other time "
    "stream token model retry fallback network provider output text response request latency "
    "budget timer rule drift checkpoint continuation reliability transport stalled dropped "
    "garbage consumer event session attempt observability callback adapter plugin "
    "configuration environment variable deployment production throughput memory concurrency "
    "benchmark measurement overhead python asynchronous generator iterator function argument "
    "parameter result exception error message value content delivered abandoned announced "
    "honest contract seamless boundary repeated removed because between without through "
    "however although several important different following available"
)
_WORDS = tuple(_WORD_LIST.split())
_KEYS = ("id", "name", "model", "score", "tags", "ok", "items", "created", "usage", "role")
_CODE = (
    "async for event in stream:",
    "    if event.is_token:",
    "        print(event.text, end='')",
    "text = await l0.run(stream=tokens).read()",
    "retry = l0.Retry(max_attempts=3)",
)
# GPT-2-like pre-tokenisation: contractions, words with their leading space, numbers,
# punctuation runs, whitespace.
_MERGE = 0.4  # how often a short punctuation piece joins the next piece
_PIECE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+")


class TokenGenerator:
    """Deterministic BPE-like tokens: ``TokenGenerator(seed).tokens(n)``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # Zipf-like word weights: short, common words come up most.
        self.weights = [1.0 / (rank + 1) ** 0.3 for rank in range(len(_WORDS))]

    def _words(self, n: int) -> list[str]:
        return self.rng.choices(_WORDS, self.weights, k=n)

    def _sentence(self) -> str:
        words = self._words(self.rng.randint(6, 20))
        words[0] = words[0].capitalize()
        if self.rng.random() < 0.3:
            words.insert(self.rng.randint(1, len(words) - 1), str(self.rng.randint(1, 99_999)))
        if self.rng.random() < 0.3:
            i = self.rng.randint(1, len(words) - 1)
            words[i] += ","
        return " ".join(words) + self.rng.choice(".....?!")

    def _prose(self) -> str:
        return " ".join(self._sentence() for _ in range(self.rng.randint(2, 6))) + "\n\n"

    def _json(self) -> str:
        rng = self.rng
        obj: dict[str, Any] = {}
        for key in rng.sample(_KEYS, rng.randint(3, 7)):
            kind = rng.random()
            if kind < 0.3:
                obj[key] = " ".join(self._words(rng.randint(1, 4)))
            elif kind < 0.5:
                obj[key] = rng.randint(0, 10 ** rng.randint(1, 9))
            elif kind < 0.65:
                obj[key] = round(rng.random() * 100, rng.randint(1, 4))
            elif kind < 0.75:
                obj[key] = rng.random() < 0.5
            elif kind < 0.9:
                obj[key] = self._words(rng.randint(1, 4))
            else:
                obj[key] = {"prompt_tokens": rng.randint(1, 4000), "total": rng.randint(1, 9000)}
        return json.dumps(obj) + "\n"

    def _markdown(self) -> str:
        rng = self.rng
        title = " ".join(w.capitalize() for w in self._words(rng.randint(2, 5)))
        out = [f"{'#' * rng.randint(1, 3)} {title}\n\n"]
        for _ in range(rng.randint(2, 5)):
            words = self._words(rng.randint(3, 10))
            if rng.random() < 0.4:
                words[0] = f"**{words[0]}**"
            if rng.random() < 0.3:
                words[-1] = f"`{words[-1]}()`"
            out.append(f"- {' '.join(words)}\n")
        if rng.random() < 0.5:
            lines = rng.sample(_CODE, rng.randint(1, 3))
            out.append("\n```python\n" + "\n".join(lines) + "\n```\n")
        out.append("\n")
        return "".join(out)

    def _split(self, piece: str) -> list[str]:
        """Cut a long word or number into sub-word pieces, as a BPE vocabulary would."""
        rng = self.rng
        body = piece.strip()
        if body.isdigit():
            lead = " " if piece.startswith(" ") else ""
            groups = [body[i : i + 3] for i in range(0, len(body), 3)]
            groups[0] = lead + groups[0]
            return groups
        if len(piece) <= rng.randint(9, 13):
            return [piece]
        out = []
        i = 0
        while i < len(piece):
            step = rng.randint(4, 8)
            out.append(piece[i : i + step])
            i += step
        return out

    def _pieces(self, text: str) -> list[str]:
        return [p for piece in _PIECE.findall(text) for p in self._split(piece) if p]

    def _json_line(self, n: int) -> list[str]:
        """One line of JSON, ``{"items": [...]}``, of about ``n`` tokens (whole items: the
        document stays valid, so a few more tokens than ``n``)."""
        out = self._pieces('{"items": [')
        first = True
        while len(out) < n - 2:
            item = self._json().rstrip("\n")
            out.extend(self._pieces(item if first else ", " + item))
            first = False
        out.extend(self._pieces("]}"))
        return out

    def tokens(self, n: int, kind: str = "mixed") -> list[str]:
        """``n`` tokens of ``kind``: mixed (prose, one-line JSON and markdown in turn),
        prose, markdown, or json (one JSON document on one line: a few more than ``n``)."""
        if kind == "json":
            return self._json_line(n)
        out: list[str] = []
        makers = {
            "mixed": (self._prose, self._prose, self._json, self._markdown),
            "prose": (self._prose,),
            "markdown": (self._markdown,),
        }[kind]
        first = True
        while len(out) < n:
            # (mixed output opens with prose: one that opened with JSON would be JSON output,
            # and the prose after it a json guardrail violation)
            text = self._prose() if first and kind == "mixed" else self.rng.choice(makers)()
            first = False
            pieces = self._pieces(text)
            # merged short pieces, as a trained vocabulary has (").", " **", ".\n\n"...)
            i = 0
            while i < len(pieces):
                piece = pieces[i]
                short = len(piece) <= 2 and not piece.strip().isalpha()
                if short and i + 1 < len(pieces) and self.rng.random() < _MERGE:
                    pieces[i + 1] = piece + pieces[i + 1]
                else:
                    out.append(piece)
                i += 1
        del out[n:]
        if "".join(out).count("```") % 2:  # cut inside a code block: close it (guardrails)
            out[-1] += "\n```\n"
        return out


# ---------------------------------------------------------------------------------------------
# Sources and consumers. A "runner" consumes one whole stream and returns its text.
# ---------------------------------------------------------------------------------------------

Runner = Callable[[], Awaitable[str]]
Factory = Callable[[], AsyncIterator[Any]]
T_ = TypeVar("T_")


def _source(items: Sequence[Any]) -> Factory:
    async def gen() -> AsyncIterator[Any]:
        for t in items:
            yield t

    return gen


def _raw_str(items: Sequence[str]) -> Runner:
    gen = _source(items)

    async def once() -> str:
        parts: list[str] = []
        async for t in gen():
            parts.append(t)  # noqa: PERF401 - the loop is what is measured
        return "".join(parts)

    return once


def _raw_chunks(items: Sequence[Any]) -> Runner:
    gen = _source(items)

    async def once() -> str:
        parts: list[str] = []
        async for chunk in gen():
            t = chunk.choices[0].delta.content
            if t:
                parts.append(t)
        return "".join(parts)

    return once


def _l0_runner(source: Factory, kwargs: Mapping[str, Any]) -> Runner:
    options = dict(kwargs)

    async def once() -> str:
        parts: list[Any] = []
        stream = l0.run(stream=source, **options)
        async for ev in stream:
            if ev.is_token:
                parts.append(ev.text)  # noqa: PERF401 - the loop is what is measured
        return "".join(parts)

    return once


def _ai2070_runner(mod: Any, source: Factory, kwargs: Mapping[str, Any]) -> Runner:
    options = dict(kwargs)

    async def once() -> str:
        parts: list[Any] = []
        stream = await mod.run(stream=source, **options)
        async for ev in stream:
            if ev.is_token:
                parts.append(ev.text)  # noqa: PERF401 - the loop is what is measured
        return "".join(parts)

    return once


# ---------------------------------------------------------------------------------------------
# Optional contenders
# ---------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _openai_chunk_maker() -> Callable[[str | None, str | None], Any] | None:
    """A constructor of real ``openai`` ChatCompletionChunk objects, or None."""
    try:
        types = importlib.import_module("openai.types.chat")
        parts = importlib.import_module("openai.types.chat.chat_completion_chunk")
    except ImportError:
        return None
    chunk_cls = types.ChatCompletionChunk
    choice_cls = parts.Choice
    delta_cls = parts.ChoiceDelta

    def make(content: str | None, finish_reason: str | None) -> Any:
        return chunk_cls(
            id="chatcmpl-bench",
            object="chat.completion.chunk",
            created=1_700_000_000,
            model="gpt-4o-mini",
            choices=[
                choice_cls(index=0, delta=delta_cls(content=content), finish_reason=finish_reason)
            ],
        )

    return make


def _litellm_chunk_maker() -> Callable[[str | None, str | None], Any] | None:
    """A constructor of real ``litellm`` ModelResponseStream chunks, or None."""
    # LiteLLM fetches its model price list from the network at import unless told not to
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        utils = importlib.import_module("litellm.types.utils")
    except ImportError:
        return None

    def make(content: str | None, finish_reason: str | None) -> Any:
        choice = utils.StreamingChoices(index=0, delta=utils.Delta(content=content),
                                        finish_reason=finish_reason)
        return utils.ModelResponseStream(id="chatcmpl-bench", model="gpt-4o-mini",
                                         choices=[choice])

    return make


def _openai_chunks(
    make: Callable[[str | None, str | None], Any],
    texts: Sequence[str],
    shared: dict[str, Any] | None = None,
) -> list[Any]:
    """The chunks of ``texts``. With ``shared``, one object per distinct text, shared by the
    streams: 20 000 chunks of ~2.4 KB each would otherwise be read cold from memory, which
    a real stream's chunks, parsed just before they are read, never are."""
    if shared is None:
        return [*(make(t, None) for t in texts), make(None, "stop")]
    out = []
    for t in texts:
        chunk = shared.get(t)
        if chunk is None:
            chunk = shared[t] = make(t, None)
        out.append(chunk)
    out.append(make(None, "stop"))
    return out


def _l0_adapter_registered(name: str) -> bool:
    try:
        from l0_core.plugins.host import get_host

        return name in get_host().registry("adapters")
    except Exception:
        return False


def _ai2070() -> Any:
    """The ``ai2070-l0`` package (import name ``l0``), or None."""
    if _version("ai2070-l0") is None:
        return None
    try:
        mod = importlib.import_module("l0")
    except Exception:
        return None
    return mod if callable(getattr(mod, "run", None)) else None


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


async def _interleaved(
    samplers: Mapping[str, Callable[[], Awaitable[T_]]], rounds: int, warmup: int
) -> dict[str, list[T_]]:
    """Warm-up runs, then ``rounds`` rounds over every sampler, the order rotated each round,
    ``gc.collect()`` before each timed run.

    Streams over pre-built lists never suspend, so without help the event loop would not run
    between samples; ``asyncio.sleep(0)`` before each one lets it do its housekeeping (drop
    cancelled timer handles), as it does between network reads in real use.
    """
    names = list(samplers)
    for _ in range(warmup):
        for name in names:
            await samplers[name]()
    out: dict[str, list[T_]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            await asyncio.sleep(0)
            gc.collect()
            out[name].append(await samplers[name]())
    return out


def _timed(
    runners: Sequence[Runner], expected: Sequence[str], tokens: Sequence[int], name: str
) -> Callable[[], Awaitable[float]]:
    """A sampler that runs the variants in turn and returns ns per token. Every row of a
    section is sampled equally often, so in each round all rows read the same variant."""
    calls = 0

    async def sample() -> float:
        nonlocal calls
        i = calls % len(runners)
        calls += 1
        t0 = time.perf_counter_ns()
        text = await runners[i]()
        dt = time.perf_counter_ns() - t0
        if text != expected[i]:
            raise AssertionError(f"{name}: the output changed between runs")
        return dt / tokens[i]

    return sample


@dataclass
class Row:
    name: str
    kind: str  # str | chunks | openai | litellm
    floor: str  # the raw row this one is compared with ("" for a floor)
    feature: str | None  # an L0 feature level, or None
    contender: str  # raw | l0_core | ai2070-l0
    runners: dict[int, list[Runner]] = field(default_factory=dict)  # per N: one per variant


@dataclass
class Skipped:
    name: str
    reason: str


async def _check(runner: Runner, expected: str) -> str | None:
    """None if ``runner`` produces ``expected``, else why not."""
    try:
        text = await runner()
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"
    if text != expected:
        return f"wrong output: {len(text)} chars instead of {len(expected)}"
    return None


def _stats(samples: Sequence[float], n: int) -> dict[str, float]:
    return {
        "median_ns": statistics.median(samples) / n,
        "min_ns": min(samples) / n,
    }


# ---------------------------------------------------------------------------------------------
# 1. Throughput
# ---------------------------------------------------------------------------------------------


def _build_rows(
    s: Settings,
    items: Mapping[int, list[dict[str, Sequence[Any]]]],
    ai: Any,
    openai_ok: bool,
    skipped: list[Skipped],
    features: Sequence[str] | None = None,
    litellm_ok: bool = False,
) -> list[Row]:
    """Every throughput row, with its runners per N (one per variant)."""
    adapter = FakeChunkAdapter()
    rows: list[Row] = [
        Row("raw-str", "str", "", None, "raw"),
        Row("raw-chunks", "chunks", "", None, "raw"),
    ]
    for feature in s.features if features is None else features:
        rows.append(Row(f"l0-{feature}-str", "str", "raw-str", feature, "l0_core"))
        rows.append(Row(f"l0-{feature}-chunks", "chunks", "raw-chunks", feature, "l0_core"))
    openai_adapter = _l0_adapter_registered("openai")
    if openai_ok:
        rows.append(Row("raw-openai", "openai", "", None, "raw"))
        if openai_adapter:
            levels = ("core", *(f for f in ("recommended", "full") if f in s.features))
            rows.extend(Row(f"l0-{f}-openai", "openai", "raw-openai", f, "l0_core") for f in levels)
        else:
            skipped.append(
                Skipped(
                    "l0-core-openai",
                    "no adapter named 'openai' is registered (install the l0-openai plugin)",
                )
            )
        rows.append(Row("l0-core-openai-local", "openai", "raw-openai", "core", "l0_core"))
    else:
        skipped.append(
            Skipped("raw-openai / l0-core-openai", "the openai package is not installed")
        )
    if litellm_ok and _l0_adapter_registered("litellm"):
        rows.append(Row("raw-litellm", "litellm", "", None, "raw"))
        rows.append(Row("l0-core-litellm", "litellm", "raw-litellm", "core", "l0_core"))
    elif features is None:
        skipped.append(Skipped("raw-litellm / l0-core-litellm",
                               "litellm or the l0-litellm plugin is not installed"))
    if ai is not None:
        rows.append(Row("ai2070-l0-str", "str", "raw-str", None, "ai2070-l0"))
        rows.append(Row("ai2070-l0-chunks", "chunks", "raw-chunks", None, "ai2070-l0"))
        if openai_ok:
            rows.append(Row("ai2070-l0-openai", "openai", "raw-openai", None, "ai2070-l0"))
    else:
        skipped.append(Skipped("ai2070-l0-*", "ai2070-l0 (import name l0) is not installed"))

    for n in s.sizes:
        for row in rows:
            row.runners[n] = [_runner(row, its, ai, adapter) for its in items[n]]
    return rows


def _runner(row: Row, its: Mapping[str, Sequence[Any]], ai: Any, adapter: Any) -> Runner:
    src = _source(its[row.kind])
    if row.contender == "raw":
        return _raw_str(its["str"]) if row.kind == "str" else _raw_chunks(its[row.kind])
    if row.contender == "l0_core":
        kwargs = dict(FEATURES[row.feature or "core"])
        if row.kind == "openai" and not row.name.endswith("-local"):
            kwargs["adapter"] = "openai"  # l0-openai's adapter
        elif row.kind == "litellm":
            kwargs["adapter"] = "litellm"  # l0-litellm's adapter
        elif row.kind != "str":
            kwargs["adapter"] = adapter
        return _l0_runner(src, kwargs)
    opts: dict[str, Any] = {} if row.kind == "str" else {"adapter": "openai"}
    return _ai2070_runner(ai, src, opts)


def _variants(
    s: Settings, kind: str, make_openai: Callable[[str | None, str | None], Any] | None,
    make_litellm: Callable[[str | None, str | None], Any] | None = None,
) -> tuple[dict[int, list[dict[str, Sequence[Any]]]], dict[int, list[str]], dict[int, list[int]]]:
    """The token streams of each size: ``VARIANTS`` different ones, read in turn."""
    items: dict[int, list[dict[str, Sequence[Any]]]] = {}
    expected: dict[int, list[str]] = {}
    counts: dict[int, list[int]] = {}
    shared: dict[str, Any] = {}
    shared_litellm: dict[str, Any] = {}
    for n in s.sizes:
        items[n], expected[n], counts[n] = [], [], []
        for v in range(s.variants):
            toks = TokenGenerator(s.seed + 7919 * v).tokens(n, kind)
            its: dict[str, Sequence[Any]] = {"str": toks, "chunks": chunks(toks)}
            if make_openai is not None:
                its["openai"] = _openai_chunks(make_openai, toks, shared)
            if make_litellm is not None:  # the same texts, as LiteLLM's chunks
                its["litellm"] = _openai_chunks(make_litellm, toks, shared_litellm)
            items[n].append(its)
            expected[n].append("".join(toks))
            counts[n].append(len(toks))
    return items, expected, counts


async def throughput(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    make_openai = _openai_chunk_maker()
    ai = _ai2070()
    skipped: list[Skipped] = []
    make_litellm = _litellm_chunk_maker()
    items, expected, counts = _variants(s, "mixed", make_openai, make_litellm)
    rows = _build_rows(s, items, ai, make_openai is not None, skipped,
                       litellm_ok=make_litellm is not None)
    chars = sum(map(len, expected[max(s.sizes)])) / sum(counts[max(s.sizes)])
    del items  # the runners hold what they need
    # The inputs live for the whole section: move them out of the collector's sight, so that
    # gc.collect() before each timed run stays cheap (~100 ms each otherwise, with 20 000
    # pydantic chunks) and the collections during a run see only what the run allocates.
    gc.collect()
    gc.freeze()
    try:
        out = await _throughput_timed(s, log, rows, expected, counts, skipped, s.rounds)
    finally:
        gc.unfreeze()
    out["chars_per_token"] = chars
    return out


KIND_FEATURES = ("core", "recommended", "full")  # the levels timed on each kind of content
KINDS = ("prose", "json", "markdown")


async def kinds(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """The guardrail and drift levels on one kind of content at a time: prose, one line
    of JSON, markdown (each rule's cost depends on what the text holds)."""
    features = [f for f in KIND_FEATURES if f in s.features]
    rounds = {n: max(5, r // 3) for n, r in s.rounds.items()}
    out: dict[str, Any] = {"sizes": list(s.sizes), "rounds": {str(n): r for n, r in
                                                             rounds.items()}, "kinds": {}}
    for kind in KINDS:
        items, expected, counts = _variants(s, kind, None)
        rows = _build_rows(s, items, None, False, [], features)
        chars = sum(map(len, expected[max(s.sizes)])) / sum(counts[max(s.sizes)])
        del items
        gc.collect()
        gc.freeze()
        try:
            log(f"  {kind}:")
            res = await _throughput_timed(s, log, rows, expected, counts, [], rounds)
        finally:
            gc.unfreeze()
        res["chars_per_token"] = chars
        out["kinds"][kind] = res
    return out


async def _first_wrong_output(s: Settings, row: Row,
                               expected: Mapping[int, Sequence[str]]) -> str | None:
    for n in s.sizes:
        for runner, text in zip(row.runners[n], expected[n], strict=True):
            why = await _check(runner, text)
            if why is not None:
                return why
    return None


async def _correct_rows(
    s: Settings, rows: list[Row], expected: Mapping[int, Sequence[str]], skipped: list[Skipped]
) -> list[Row]:
    """Correctness first: a contender that does not produce the text is not timed (for L0
    itself, and the raw floors, a wrong text is an error)."""
    kept: list[Row] = []
    for row in rows:
        why = await _first_wrong_output(s, row, expected)
        if why is None:
            kept.append(row)
        elif row.contender in ("raw", "l0_core") and not (
            row.kind == "openai" and not row.name.endswith("-local")  # (l0-openai's adapter)
        ):
            raise SystemExit(f"{row.name}: {why}")
        else:
            skipped.append(Skipped(row.name, why))
    return kept


async def _throughput_timed(
    s: Settings,
    log: Callable[[str], None],
    rows: list[Row],
    expected: Mapping[int, Sequence[str]],
    counts: Mapping[int, Sequence[int]],
    skipped: list[Skipped],
    rounds: Mapping[int, int],
) -> dict[str, Any]:
    """Check every row's output, time the rows that are right, and summarise."""
    rows = await _correct_rows(s, rows, expected, skipped)

    results: dict[str, dict[int, dict[str, float]]] = {row.name: {} for row in rows}
    for n in s.sizes:
        log(f"  throughput N={n}: {len(rows)} rows x {rounds[n]} rounds")
        samplers = {
            row.name: _timed(row.runners[n], expected[n], counts[n], row.name) for row in rows
        }
        samples = await _interleaved(samplers, rounds[n], s.warmup)
        for row in rows:
            results[row.name][n] = _stats(samples[row.name], 1)
        gc.collect()

    lo, hi = min(s.sizes), max(s.sizes)
    out_rows: list[dict[str, Any]] = []
    for row in rows:
        per_n: dict[str, Any] = {}
        for n in s.sizes:
            r = dict(results[row.name][n])
            if row.floor:
                floor = results[row.floor][n]
                r["ratio"] = r["median_ns"] / floor["median_ns"]
                r["ratio_min"] = r["min_ns"] / floor["min_ns"]
            per_n[str(n)] = r
        flat = results[row.name][hi]["median_ns"] / results[row.name][lo]["median_ns"]
        flat_floor = None
        if row.floor:
            floor_flat = results[row.floor][hi]["median_ns"] / results[row.floor][lo]["median_ns"]
            flat_floor = flat / floor_flat
        budget = RATIO_BUDGET.get(row.feature or "") if row.contender == "l0_core" else None
        ratios = [per_n[str(n)].get("ratio") for n in s.sizes]
        out_rows.append(
            {
                "name": row.name,
                "kind": row.kind,
                "floor": row.floor or None,
                "feature": row.feature,
                "contender": row.contender,
                "n": per_n,
                "flatness": flat,
                "flatness_vs_floor": flat_floor,
                "flat_ok": flat <= FLAT_BUDGET,
                "ratio_budget": budget,
                "ratio_ok": None
                if budget is None
                else all(x is not None and x <= budget for x in ratios),
            }
        )
    return {
        "sizes": list(s.sizes),
        "rounds": {str(n): rounds[n] for n in s.sizes},
        "variants": s.variants,
        "rows": out_rows,
        "skipped": [{"name": k.name, "reason": k.reason} for k in skipped],
    }


# ---------------------------------------------------------------------------------------------
# 2. Time to first token and the fixed cost of a session
# ---------------------------------------------------------------------------------------------


def _session_sampler(
    kind: str, use_l0: bool, batch: int, feature: Mapping[str, Any] | None = None
) -> Callable[[], Awaitable[tuple[int, int]]]:
    """``batch`` 1-token sessions; returns (sum of times to first token, sum of session times)."""
    items: list[Any] = ["Hello"] if kind == "str" else chunks(["Hello"])
    gen = _source(items)
    adapter = FakeChunkAdapter()
    options: dict[str, Any] = {} if kind == "str" else {"adapter": adapter}
    options.update(feature or {})
    perf = time.perf_counter_ns

    async def raw_session() -> tuple[int, int, str]:
        t0 = perf()
        parts: list[str] = []
        it = gen()
        first = await anext(it)
        t = first if kind == "str" else first.choices[0].delta.content
        parts.append(t)
        t1 = perf()
        async for item in it:
            t = item if kind == "str" else item.choices[0].delta.content
            if t:
                parts.append(t)
        text = "".join(parts)
        return t1 - t0, perf() - t0, text

    async def l0_session() -> tuple[int, int, str]:
        t0 = perf()
        parts: list[Any] = []
        events = aiter(l0.run(stream=gen, **options))
        ev = await anext(events)
        parts.append(ev.text)
        t1 = perf()
        async for ev in events:
            if ev.is_token:
                parts.append(ev.text)  # noqa: PERF401 - the loop is what is measured
        text = "".join(parts)
        return t1 - t0, perf() - t0, text

    one = l0_session if use_l0 else raw_session

    async def sample() -> tuple[int, int]:
        ttft = total = 0
        for _ in range(batch):
            a, b, text = await one()
            if text != "Hello":
                raise AssertionError(f"1-token session ({kind}, l0={use_l0}) gave {text!r}")
            ttft += a
            total += b
            await asyncio.sleep(0)  # untimed: let the loop run, as between real requests
        return ttft, total

    return sample


async def sessions(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    samplers = {
        "raw-str": _session_sampler("str", False, s.session_batch),
        "l0-core-str": _session_sampler("str", True, s.session_batch),
        "raw-chunks": _session_sampler("chunks", False, s.session_batch),
        "l0-core-chunks": _session_sampler("chunks", True, s.session_batch),
    }
    if "sentry" in s.features:  # the observer's fixed cost per session
        samplers["l0-sentry-str"] = _session_sampler("str", True, s.session_batch,
                                                     FEATURES["sentry"])
    if "otel" in s.features:
        samplers["l0-otel-str"] = _session_sampler("str", True, s.session_batch,
                                                   FEATURES["otel"])
    log(f"  sessions: {len(samplers)} rows x {s.session_rounds} rounds x {s.session_batch}")
    samples = await _interleaved(samplers, s.session_rounds, s.warmup)
    rows: list[dict[str, Any]] = []
    for name, got in samples.items():
        ttft = [a / s.session_batch for a, _ in got]
        total = [b / s.session_batch for _, b in got]
        rows.append(
            {
                "name": name,
                "ttft_median_ns": statistics.median(ttft),
                "ttft_min_ns": min(ttft),
                "session_median_ns": statistics.median(total),
                "session_min_ns": min(total),
            }
        )
    by = {r["name"]: r for r in rows}
    for r in rows:
        if r["name"].startswith("l0-"):
            floor = by["raw-" + r["name"].split("-")[-1]]
            r["overhead_ttft_ns"] = r["ttft_median_ns"] - floor["ttft_median_ns"]
            r["overhead_session_ns"] = r["session_median_ns"] - floor["session_median_ns"]
    # the core rows, and apart from them the rows of feature levels that work per session
    core = [r for r in rows if not r["name"].startswith(("l0-sentry", "l0-otel"))]
    return {"batch": s.session_batch, "rounds": s.session_rounds, "rows": core,
            "feature_rows": [r for r in rows if r not in core]}


# ---------------------------------------------------------------------------------------------
# 3. Peak memory of one stream
# ---------------------------------------------------------------------------------------------


def _fresh_source(encoded: Sequence[bytes], kind: str) -> Factory:
    """A source that builds each item when it is read (so the input is not counted)."""
    if kind == "str":

        async def gen_str() -> AsyncIterator[Any]:
            for b in encoded:
                yield b.decode()

        return gen_str

    async def gen_chunks() -> AsyncIterator[Any]:
        for b in encoded:
            yield FakeChunk(b.decode())
        yield FakeChunk(None, "stop")

    return gen_chunks


async def _peak(runner: Runner, expected: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        text = await runner()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if text != expected:
        raise AssertionError("memory run: wrong output")
    return peak


def _consume_raw(source: Factory, kind: str) -> Runner:
    async def once() -> str:
        parts: list[str] = []
        async for item in source():
            t = item if kind == "str" else item.choices[0].delta.content
            if t:
                parts.append(t)
        return "".join(parts)

    return once


async def memory(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    toks = TokenGenerator(s.seed + 1).tokens(max(s.sizes))
    adapter = FakeChunkAdapter()
    rows: list[dict[str, Any]] = []
    log(f"  memory: N={list(s.sizes)}")
    for kind in ("str", "chunks"):
        for name, use_l0 in ((f"raw-{kind}", False), (f"l0-core-{kind}", True)):
            row: dict[str, Any] = {"name": name, "n": {}}
            for n in s.sizes:
                encoded = [t.encode() for t in toks[:n]]
                expected = "".join(toks[:n])
                source = _fresh_source(encoded, kind)
                if use_l0:
                    opts: dict[str, Any] = {} if kind == "str" else {"adapter": adapter}
                    runner = _l0_runner(source, opts)
                else:
                    runner = _consume_raw(source, kind)
                await runner()  # warm: imports, caches
                peaks = [await _peak(runner, expected) for _ in range(s.memory_repeats)]
                peak = statistics.median(peaks)
                row["n"][str(n)] = {
                    "peak_bytes": peak,
                    "bytes_per_token": peak / n,
                    "text_bytes": len(expected),
                }
            lo, hi = row["n"][str(min(s.sizes))], row["n"][str(max(s.sizes))]
            row["flatness"] = hi["bytes_per_token"] / lo["bytes_per_token"]
            row["flat_ok"] = row["flatness"] <= MEMORY_FLAT_BUDGET
            rows.append(row)
    by = {r["name"]: r for r in rows}
    for r in rows:
        if r["name"].startswith("l0-"):
            floor = by["raw-" + r["name"].split("-")[-1]]
            for n, v in r["n"].items():
                v["ratio"] = v["peak_bytes"] / floor["n"][n]["peak_bytes"]
    return {"sizes": list(s.sizes), "rows": rows}


# ---------------------------------------------------------------------------------------------
# 4. Concurrency
# ---------------------------------------------------------------------------------------------


def _bursty_source(items: Sequence[str], burst: int) -> Factory:
    bursts = [items[i : i + burst] for i in range(0, len(items), burst)]

    async def gen() -> AsyncIterator[Any]:
        for b in bursts:
            await asyncio.sleep(0)  # one "network read" per burst: lets the others run
            for t in b:
                yield t

    return gen


async def concurrency(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    toks = TokenGenerator(s.seed + 2).tokens(s.stream_tokens)
    expected = "".join(toks)
    source = _bursty_source(toks, CONCURRENCY_BURST)

    async def raw_one() -> str:
        parts: list[str] = []
        async for t in source():
            parts.append(t)  # noqa: PERF401 - the loop is what is measured
        return "".join(parts)

    l0_one = _l0_runner(source, {})

    def many(one: Runner) -> Callable[[], Awaitable[int]]:
        async def sample() -> int:
            t0 = time.perf_counter_ns()
            texts = await asyncio.gather(*(one() for _ in range(s.streams)))
            dt = time.perf_counter_ns() - t0
            if any(t != expected for t in texts):
                raise AssertionError("concurrency: wrong output")
            return dt

        return sample

    log(
        f"  concurrency: {s.streams} streams x {s.stream_tokens} tokens "
        f"x {s.concurrency_rounds} rounds"
    )
    samples = await _interleaved(
        {"raw-str": many(raw_one), "l0-core-str": many(l0_one)}, s.concurrency_rounds, 1
    )
    total = s.streams * s.stream_tokens
    rows: list[dict[str, Any]] = []
    for name, got in samples.items():
        rows.append(
            {
                "name": name,
                "wall_median_ms": statistics.median(got) / 1e6,
                "wall_min_ms": min(got) / 1e6,
                "ns_per_token": statistics.median(got) / total,
                "ns_per_token_min": min(got) / total,
            }
        )
    rows[1]["ratio"] = rows[1]["wall_median_ms"] / rows[0]["wall_median_ms"]
    return {
        "streams": s.streams,
        "tokens_per_stream": s.stream_tokens,
        "burst": CONCURRENCY_BURST,
        "rounds": s.concurrency_rounds,
        "rows": rows,
    }


# ---------------------------------------------------------------------------------------------
# 6. Hostile deltas: one huge piece of pathological text per check
# ---------------------------------------------------------------------------------------------

# Each makes some rule do the most work it can per character: many hits, deep nesting, a
# token that never ends. ``unit`` is repeated to the size.
HOSTILE: dict[str, tuple[str, str, str]] = {  # name: (head, unit, tail)
    "hedging lines": ("", "Sure\n", ""),
    "deep arrays": ("", "[", ""),  # (closed after the repeats: see _hostile_text)
    "one long string": ('{"a": "', "x", '"}'),
    "table rows": ("| a | b |\n|---|---|\n", "| 1 | 2 |\n", ""),
    "brackets": ("", "[<", ""),
    "spaces": ("{", " ", "}"),
    "one word again": ("", "again ", ""),
}
HOSTILE_CHECKERS = ("json", "markdown", "pattern", "latex", "repetition", "drift")


def _hostile_text(name: str, size: int) -> str:
    head, unit, tail = HOSTILE[name]
    reps = max(1, size // len(unit))
    if name == "deep arrays":
        half = max(1, size // 2)
        return "[" * half + "]" * half
    return head + unit * reps + tail


async def hostile(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """ns per character of each rule (and the drift detector) given a whole pathological
    text as one delta, at two sizes: O(delta) means flat."""
    small, large = (5_000, 50_000) if s.quick else (50_000, 500_000)
    log(f"  hostile: {len(HOSTILE)} texts x {len(HOSTILE_CHECKERS)} checkers, "
        f"{small} and {large} characters in one delta")
    rows: list[dict[str, Any]] = []
    for name in HOSTILE:
        for checker in HOSTILE_CHECKERS:
            per: dict[str, float] = {}
            for size in (small, large):
                text = _hostile_text(name, size)
                best = float("inf")
                for _ in range(1 if s.quick else 3):
                    if checker == "drift":
                        detector = create_detector(True)
                        assert detector is not None
                        t0 = time.perf_counter_ns()
                        detector.check_delta(text, 0)
                    else:
                        (rule,) = create_rules([checker])
                        t0 = time.perf_counter_ns()
                        rule.check_delta(text, 0)
                        rule.check_complete(text)
                    best = min(best, time.perf_counter_ns() - t0)
                per[str(size)] = best / len(text)
            flat = per[str(large)] / per[str(small)] if per[str(small)] else 1.0
            rows.append({"text": name, "checker": checker, "ns_per_char": per,
                         "flatness": flat, "flat_ok": flat <= FLAT_BUDGET})
    return {"sizes": [small, large], "rows": rows}


# ---------------------------------------------------------------------------------------------
# 7. Cold import: each statement timed in fresh interpreters
# ---------------------------------------------------------------------------------------------

IMPORT_BUDGET_MS = 100.0  # cold ``import l0_core``, on the 2-core box

IMPORT_ROWS: dict[str, str] = {  # row name -> the statement timed in a fresh interpreter
    "python": "pass",  # the floor: the interpreter alone
    "import pydantic": "import pydantic",
    "import l0_core": "import l0_core",
    "l0_core.run": "import l0_core; l0_core.run",  # the first use of the runtime
}
IMPORT_BUDGETS: dict[str, float] = {"import l0_core": IMPORT_BUDGET_MS}

# The child times its own statement, so the interpreter's start-up is not counted in "import".
_IMPORT_PROBE = (
    "import time; _t0 = time.perf_counter(); {statement}; print(time.perf_counter() - _t0)"
)


def _import_env() -> dict[str, str]:
    """The environment of the children: they import the l0_core this process imported."""
    import os

    env = dict(os.environ)
    l0_file = l0.__file__
    if l0_file is not None:
        package_root = str(Path(l0_file).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def _import_sample(statement: str, env: Mapping[str, str]) -> tuple[float, float] | str:
    """(import ms, process wall ms) of one fresh interpreter, or why it failed."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE.format(statement=statement)],
        capture_output=True, text=True, env=env, check=False,
    )
    wall_ms = (time.perf_counter() - t0) * 1e3
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {proc.returncode}"
    return float(proc.stdout.strip()) * 1e3, wall_ms


async def cold_import(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """Cold import times (ms), each row in ``s.import_runs`` fresh interpreters, rows
    interleaved in rotated order; a warm-up run per row first (it may write .pyc files)."""
    log(f"  import: {len(IMPORT_ROWS)} rows x {s.import_runs} fresh interpreters")
    env = _import_env()
    names = list(IMPORT_ROWS)
    skipped: dict[str, str] = {}
    for name in names:
        warm = _import_sample(IMPORT_ROWS[name], env)
        if isinstance(warm, str):
            skipped[name] = warm
    timed = [n for n in names if n not in skipped]
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in timed}
    for round_ in range(s.import_runs):
        shift = round_ % len(timed) if timed else 0
        for name in timed[shift:] + timed[:shift]:
            sample = _import_sample(IMPORT_ROWS[name], env)
            if isinstance(sample, str):
                raise RuntimeError(f"import row {name!r} failed after its warm-up: {sample}")
            samples[name].append(sample)
    rows = []
    for name in timed:
        imports = [i for i, _ in samples[name]]
        walls = [w for _, w in samples[name]]
        budget = IMPORT_BUDGETS.get(name)
        median = statistics.median(imports)
        rows.append({
            "name": name, "statement": IMPORT_ROWS[name],
            "import_median_ms": median, "import_min_ms": min(imports),
            "wall_median_ms": statistics.median(walls), "wall_min_ms": min(walls),
            "budget_ms": budget, "budget_ok": None if budget is None else median <= budget,
        })
    return {
        "runs": s.import_runs,
        "rows": rows,
        "skipped": [{"name": n, "reason": r} for n, r in skipped.items()],
    }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _ok(flag: bool | None) -> str:
    return "-" if flag is None else ("PASS" if flag else "over budget")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out.extend(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )
    return "\n".join(out)


def _report_throughput(tp: Mapping[str, Any]) -> list[str]:
    sizes = tp["sizes"]
    lo, hi = min(sizes), max(sizes)
    out = [
        f"1. Throughput (ns/token, median [min]; ratio = median / the raw floor's median; "
        f"{tp['chars_per_token']:.2f} chars/token)"
    ]
    rows = []
    for r in tp["rows"]:
        cells = [r["name"]]
        for n in sizes:
            v = r["n"][str(n)]
            cells.append(f"{v['median_ns']:.0f} [{v['min_ns']:.0f}]")
            cells.append(f"{v['ratio']:.2f}x" if "ratio" in v else "-")
        cells.append(f"{r['flatness']:.2f} {_ok(r['flat_ok'])}")
        vs_floor = r["flatness_vs_floor"]
        cells.append("-" if vs_floor is None else f"{vs_floor:.2f}")
        budget = r["ratio_budget"]
        cells.append("-" if budget is None else f"<={budget:g}x {_ok(r['ratio_ok'])}")
        rows.append(cells)
    headers = ["row"]
    for n in sizes:
        headers += [f"N={n}", "ratio"]
    headers += [f"{hi}/{lo} (<={FLAT_BUDGET})", "/ floor's", "budget"]
    out.append(_table(headers, rows))
    out.extend(f"  skipped {sk['name']}: {sk['reason']}" for sk in tp["skipped"])
    return out


def _report_sessions(se: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            r["name"],
            f"{r['ttft_median_ns'] / 1e3:.2f} [{r['ttft_min_ns'] / 1e3:.2f}]",
            f"{r['session_median_ns'] / 1e3:.2f} [{r['session_min_ns'] / 1e3:.2f}]",
            f"+{r['overhead_ttft_ns'] / 1e3:.2f}" if "overhead_ttft_ns" in r else "-",
            f"+{r['overhead_session_ns'] / 1e3:.2f}" if "overhead_session_ns" in r else "-",
        ]
        for r in [*se["rows"], *se.get("feature_rows", ())]
    ]
    return [
        f"3. Time to first token and fixed cost of a 1-token session (us, median [min] "
        f"of {se['rounds']} x {se['batch']} sessions)",
        _table(["row", "TTFT", "session", "TTFT - raw", "session - raw"], rows),
    ]


def _report_memory(me: Mapping[str, Any]) -> list[str]:
    rows = []
    for r in me["rows"]:
        cells = [r["name"]]
        for n in me["sizes"]:
            v = r["n"][str(n)]
            cells.append(f"{v['peak_bytes'] / 1024:.0f} KiB")
            cells.append(f"{v['bytes_per_token']:.0f}")
            cells.append(f"{v['ratio']:.2f}x" if "ratio" in v else "-")
        cells.append(f"{r['flatness']:.2f} {_ok(r['flat_ok'])}")
        rows.append(cells)
    headers = ["row"]
    for n in me["sizes"]:
        headers += [f"peak N={n}", "B/token", "ratio"]
    headers.append(
        f"O(text): B/token {max(me['sizes'])}/{min(me['sizes'])} (<={MEMORY_FLAT_BUDGET})"
    )
    return [
        "4. Peak memory of one stream (tracemalloc; items built as read)",
        _table(headers, rows),
    ]


def _report_concurrency(co: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            r["name"],
            f"{r['wall_median_ms']:.1f} [{r['wall_min_ms']:.1f}]",
            f"{r['ns_per_token']:.0f} [{r['ns_per_token_min']:.0f}]",
            f"{r['ratio']:.2f}x" if "ratio" in r else "-",
        ]
        for r in co["rows"]
    ]
    return [
        f"5. Concurrency: {co['streams']} streams x {co['tokens_per_stream']} tokens, "
        f"asyncio.gather (the source yields to the loop every {co['burst']} tokens)",
        _table(["row", "wall ms", "ns/token", "ratio"], rows),
    ]


def _report_kinds(ki: Mapping[str, Any]) -> list[str]:
    sizes = ki["sizes"]
    lo, hi = min(sizes), max(sizes)
    rows = []
    for kind, res in ki["kinds"].items():
        for r in res["rows"]:
            cells = [kind, r["name"]]
            for n in sizes:
                v = r["n"][str(n)]
                cells.append(f"{v['median_ns']:.0f}")
                cells.append(f"{v['ratio']:.2f}x" if "ratio" in v else "-")
            cells.append(f"{r['flatness']:.2f} {_ok(r['flat_ok'])}")
            budget = r["ratio_budget"]
            cells.append("-" if budget is None else f"<={budget:g}x {_ok(r['ratio_ok'])}")
            rows.append(cells)
    headers = ["kind", "row"]
    for n in sizes:
        headers += [f"N={n}", "ratio"]
    headers += [f"{hi}/{lo} (<={FLAT_BUDGET})", "budget"]
    return [
        "2. By kind of content (ns/token, median; ratio = median / the raw floor's median)",
        _table(headers, rows),
    ]


def _report_hostile(ho: Mapping[str, Any]) -> list[str]:
    small, large = ho["sizes"]
    by_text: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in ho["rows"]:
        by_text.setdefault(r["text"], {})[r["checker"]] = r
    rows = []
    for text, checkers in by_text.items():
        cells = [text]
        for checker in HOSTILE_CHECKERS:
            r = checkers[checker]
            mark = "" if r["flat_ok"] else " !"
            cells.append(f"{r['ns_per_char'][str(large)]:.1f} ({r['flatness']:.2f}{mark})")
        rows.append(cells)
    return [
        f"6. Hostile deltas: ns/char with the whole text as one delta, at {large} characters "
        f"(in brackets: ns/char at {large} / at {small}, <= {FLAT_BUDGET}; ! = over)",
        _table(["text", *HOSTILE_CHECKERS], rows),
    ]


def _report_import(im: Mapping[str, Any]) -> list[str]:
    rows = []
    for r in im["rows"]:
        budget = r["budget_ms"]
        rows.append([
            r["name"],
            f"{r['import_median_ms']:.1f} [{r['import_min_ms']:.1f}]",
            f"{r['wall_median_ms']:.1f} [{r['wall_min_ms']:.1f}]",
            "-" if budget is None else f"<={budget:g} {_ok(r['budget_ok'])}",
        ])
    out = [
        f"7. Cold import (ms, median [min] of {im['runs']} fresh interpreters; import = the "
        f"statement alone, process = the whole interpreter run)",
        _table(["row", "import", "process", "budget"], rows),
    ]
    out.extend(f"  skipped {sk['name']}: {sk['reason']}" for sk in im["skipped"])
    return out


_REPORTS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "throughput": _report_throughput,
    "kinds": _report_kinds,
    "sessions": _report_sessions,
    "memory": _report_memory,
    "concurrency": _report_concurrency,
    "hostile": _report_hostile,
    "import": _report_import,
}


def report(res: Mapping[str, Any]) -> str:
    """The readable table of a result (the sections that were run)."""
    meta = res["meta"]
    out = [
        f"L0 benchmarks - l0_core {meta['l0_core']}, Python {meta['python']}, "
        f"{meta['cpus']} CPUs, {meta['platform']}{' (quick)' if meta['quick'] else ''}"
    ]
    for name, section in _REPORTS.items():
        if name in res:
            out.append("")
            out.extend(section(res[name]))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _meta(s: Settings) -> dict[str, Any]:
    import os

    return {
        "l0_core": l0.__version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "quick": s.quick,
        "seed": s.seed,
        "features": list(s.features),
        "openai": _version("openai"),
        "litellm": _version("litellm"),
        "ai2070-l0": _version("ai2070-l0"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


SECTIONS: dict[str, Callable[[Settings, Callable[[str], None]], Awaitable[dict[str, Any]]]] = {
    "throughput": throughput,
    "kinds": kinds,
    "sessions": sessions,
    "memory": memory,
    "concurrency": concurrency,
    "hostile": hostile,
    "import": cold_import,
}


async def main_async(s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    res: dict[str, Any] = {"meta": _meta(s)}
    if "sentry" in s.features:
        _init_sentry()
    if "otel" in s.features:
        _init_otel()
    t0 = time.perf_counter()
    for name in s.sections:
        section = SECTIONS[name]
        t1 = time.perf_counter()
        res[name] = await section(s, log)
        res[name]["seconds"] = time.perf_counter() - t1
        log(f"  {name}: {res[name]['seconds']:.1f} s")
    res["meta"]["seconds"] = time.perf_counter() - t0
    res["budgets"] = {
        "ratio": RATIO_BUDGET,
        "flatness": FLAT_BUDGET,
        "memory_flatness": MEMORY_FLAT_BUDGET,
        "import_ms": IMPORT_BUDGET_MS,
    }
    return res


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="a fast smoke run (small N, few rounds)")
    p.add_argument(
        "--sizes",
        help="stream lengths in tokens, comma separated (default 2000,20000; --quick 200,2000)",
    )
    p.add_argument("--rounds", type=int, help="timed rounds per size (default: by size)")
    p.add_argument(
        "--features", help=f"L0 feature levels to run (default all: {','.join(FEATURES)})"
    )
    p.add_argument(
        "--sections", help=f"sections to run, comma separated (default all: {','.join(SECTIONS)})"
    )
    p.add_argument("--seed", type=int, default=2070, help="token generator seed")
    p.add_argument("--out", type=Path, help="write the JSON here (default: bench/results/)")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    args = p.parse_args(argv)
    s = _settings(args)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    res = asyncio.run(main_async(s, log))
    text = json.dumps(res, indent=2, sort_keys=False)
    if args.out is not None:
        paths = [args.out]
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        paths = [
            RESULTS / f"bench-{stamp}{'-quick' if s.quick else ''}.json",
            RESULTS / "latest.json",
        ]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
    else:
        print(report(res))
        print(f"\nwrote {', '.join(_display(p) for p in paths)}")
    return 0


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())

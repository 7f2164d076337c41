"""Smoke test of the benchmark suite: ``bench/run.py --quick`` runs and writes its JSON.

The numbers are not checked (budgets are reported by the suite, never asserted here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "run.py"

CORE_ROWS = {"raw-str", "raw-chunks", "l0-core-str", "l0-core-chunks"}


def test_quick_benchmark_writes_expected_rows(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--sizes", "100,400", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Throughput" in proc.stdout
    assert "Concurrency" in proc.stdout

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["meta"]["quick"] is True

    tp = data["throughput"]
    assert tp["sizes"] == [100, 400]
    rows = {row["name"]: row for row in tp["rows"]}
    features = data["meta"]["features"]
    assert "core" in features
    expected = CORE_ROWS | {f"l0-{f}-{kind}" for f in features for kind in ("str", "chunks")}
    assert expected <= set(rows)
    for name in expected:
        row = rows[name]
        for n in ("100", "400"):
            assert row["n"][n]["median_ns"] > 0
            assert row["n"][n]["min_ns"] <= row["n"][n]["median_ns"]
            if name.startswith("l0-"):
                assert row["n"][n]["ratio"] > 0
        assert row["flatness"] > 0
    assert rows["l0-core-str"]["ratio_budget"] == 3.0
    assert isinstance(rows["l0-core-str"]["ratio_ok"], bool)
    skipped = {s["name"] for s in tp["skipped"]}
    assert ("raw-openai" in rows) != ("raw-openai / l0-core-openai" in skipped)

    # the variants: as many distinct streams per size as the run says, read in turn
    assert tp["variants"] == 2

    kinds = data["kinds"]
    assert set(kinds["kinds"]) == {"prose", "json", "markdown"}
    levels = [f for f in ("core", "recommended", "full") if f in features]
    for res in kinds["kinds"].values():
        names = {row["name"] for row in res["rows"]}
        assert names == CORE_ROWS | {f"l0-{f}-{k}" for f in levels for k in ("str", "chunks")}
        for row in res["rows"]:
            assert all(row["n"][n]["median_ns"] > 0 for n in ("100", "400"))
    assert "By kind of content" in proc.stdout

    sessions = {row["name"]: row for row in data["sessions"]["rows"]}
    assert set(sessions) == CORE_ROWS
    assert sessions["l0-core-str"]["ttft_median_ns"] > 0
    assert sessions["l0-core-str"]["session_median_ns"] >= sessions["l0-core-str"]["ttft_min_ns"]
    assert "overhead_session_ns" in sessions["l0-core-chunks"]

    memory = {row["name"]: row for row in data["memory"]["rows"]}
    assert set(memory) == CORE_ROWS
    assert memory["l0-core-str"]["n"]["400"]["peak_bytes"] > 0
    assert memory["l0-core-str"]["n"]["400"]["ratio"] > 0

    hostile = data["hostile"]
    assert hostile["sizes"] == [5_000, 50_000]
    cells = {(row["text"], row["checker"]) for row in hostile["rows"]}
    assert ("hedging lines", "pattern") in cells and ("deep arrays", "json") in cells
    assert len(cells) == len(hostile["rows"]) == 7 * 6
    assert all(row["ns_per_char"]["50000"] > 0 for row in hostile["rows"])
    assert "Hostile deltas" in proc.stdout

    conc = {row["name"]: row for row in data["concurrency"]["rows"]}
    assert set(conc) == {"raw-str", "l0-core-str"}
    assert conc["l0-core-str"]["ratio"] > 0


def _generator() -> type:
    sys.path.insert(0, str(RUN.parent))
    try:
        import run  # the bench script, as a module
    finally:
        sys.path.remove(str(RUN.parent))
    generator: type = run.TokenGenerator
    return generator


def test_token_kinds_are_what_they_say() -> None:
    gen = _generator()
    prose = "".join(gen(1).tokens(500, "prose"))
    assert "{" not in prose and "```" not in prose and "#" not in prose
    line = gen(2).tokens(500, "json")
    assert len(line) >= 500 and "\n" not in "".join(line)
    assert list(json.loads("".join(line))) == ["items"]
    md = "".join(gen(3).tokens(500, "markdown"))
    assert md.startswith("#") and md.count("```") % 2 == 0
    mixed = gen(4).tokens(2000)
    assert len(mixed) == 2000 and not "".join(mixed).lstrip().startswith(("{", "["))
    # different seeds give different streams (the variants), the same seed the same one
    assert gen(5).tokens(300) == gen(5).tokens(300) != gen(6).tokens(300)

"""Smoke test of ``bench/structured.py --quick``: it runs and writes its JSON (numbers are
reported by the benchmark, never asserted here, except that L0 repairs its own corpus and
that the rows and the ratios derived from them are there and consistent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_structured_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "structured.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "structured.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "structured_stream" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    corpus = data["corpus"]["summary"]
    assert corpus["ours_expected"] == corpus["documents"] >= 20
    assert [row["input"] for row in data["repair"]] == ["1 KB", "100 KB"]
    assert all(row["ours_us"] > 0 for row in data["repair"])
    names = {row["name"] for row in data["corpus"]["rows"]}
    assert {"fence-in-string", "inner-double-quotes", "apostrophe-in-single", "hex-number",
            "thousands", "stray-closer-comma"} <= names  # the hard cases are in the corpus
    stream = data["stream"]
    rows = stream["rows"]
    expected = {"l0.run core", "structured_stream", "structured_stream, no rate limit"}
    assert set(rows) == expected
    assert all(set(row) == {"200", "2000"} and all(v > 0 for v in row.values())
               for row in rows.values())
    for name in expected - {"l0.run core"}:
        assert stream["flatness"][name] == rows[name]["2000"] / rows[name]["200"]
        assert stream["ratio"][name]["2000"] == rows[name]["2000"] / rows["l0.run core"]["2000"]
        assert set(stream["largest_gap_tokens"][name]) == {"214", "2018"}
        assert stream["objects_yielded"][name]["2000"] >= 2  # partial(s), then the final

"""Smoke test of ``bench/structured.py --quick``: it runs and writes its JSON (numbers are
reported by the benchmark, never asserted here, except that L0 repairs its own corpus)."""

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
    rows = data["stream"]["rows"]
    assert set(rows) == {"l0.run core", "structured_stream", "structured_stream, no rate limit"}
    assert all(v > 0 for row in rows.values() for v in row.values())

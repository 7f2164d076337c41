"""Smoke test of ``bench/multi.py --quick``: it runs, checks its own results, writes its JSON.

The timings are not checked (they are reported, never asserted: shared machines are noisy);
what each row computed is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MULTI = ROOT / "bench" / "multi.py"


def test_quick_multi_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "multi.json"
    proc = subprocess.run(
        [sys.executable, str(MULTI), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Parallel: 200 tasks" in proc.stdout and "Consensus: 5 outputs" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    rows = {row["name"]: row for row in data["parallel"]["rows"]}
    assert set(rows) == {"gather(l0.run)", "parallel(concurrency=200)",
                         "parallel(concurrency=50)"}
    assert rows["gather(l0.run)"]["ratio"] == 1.0
    assert all(row["median_s"] > 0 for row in rows.values())
    c = data["consensus"]
    assert (c["outputs"], c["chars"], c["pairs"]) == (5, 10_000, 10)
    assert c["difflib_exact_pairs_timed"] == 1
    assert c["l0_near_copy"] > 0.8 > c["l0_dissent"]
    assert c["difflib_exact_near_copy"] > 0.9 > 0.1 > c["difflib_near_copy"]
    assert c["l0_s"] > 0 and c["difflib_exact_s"] > 0

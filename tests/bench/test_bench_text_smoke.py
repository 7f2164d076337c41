"""Smoke test of the long-document benchmark: ``bench/text.py --quick`` runs and writes its JSON.

The numbers are not checked (they are reported in docs/benchmarks.md, never asserted here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_text_benchmark_writes_expected_rows(tmp_path: Path) -> None:
    out = tmp_path / "text.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "text.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1. Windowing" in proc.stdout and "2. process_all" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["name"]: r for r in data["windowing"]["rows"]}
    assert {"str.split (floor)", "estimate count (floor)", "Window token 2000/200",
            "Window char 8000/800", "Window sentence 2000/200",
            "Window paragraph 2000/200"} == set(rows)
    assert rows["estimate count (floor)"]["ratio"] == 1.0
    assert all(r["ms"] > 0 for r in rows.values())
    assert all(rows[name]["chunks"] > 1 for name in rows if name.startswith("Window"))
    process = {r["name"]: r for r in data["process"]["rows"]}
    assert set(process) == {"l0.run one by one", "gather(l0.run), 4 at a time",
                            "process_all, concurrency 4"}
    assert process["l0.run one by one"]["overhead_us"] == 0.0
    assert all(r["us_per_chunk"] > 0 for r in process.values())

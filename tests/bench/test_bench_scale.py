"""Smoke test of ``bench/scale.py --quick``: it runs and reports every row (numbers unchecked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORES = ["memory://", "sqlite://", "redis://", "postgresql://"]


def test_scale_benchmark_runs_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick", "--tokens", "300",
         "--rounds", "1", "--sessions", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Time to resume a dead session" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [row["name"] for row in data["per_token"]["rows"]] == [
        "no recording", *(f"recording to {store}" for store in STORES)]
    assert all(row["cpu_ns_per_token"] > 0 for row in data["per_token"]["rows"])
    assert [row["store"] for row in data["rates"]] == STORES
    assert all(row["direct_events_per_s"] > 0 and row["session_events"] > 2 * 300
               for row in data["rates"])
    assert [row["store"] for row in data["resume"]] == ["redis://", "postgresql://"]
    assert all(0 < row["resume_returns_ms"] <= row["first_token_stored_ms"]
               for row in data["resume"])

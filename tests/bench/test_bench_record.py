"""Smoke test of ``bench/record.py --quick``: it runs and reports every row (numbers unchecked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_record_benchmark_runs_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "record.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "record.py"), "--quick", "--tokens", "300",
         "--rounds", "2", "--sessions", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SQLite events written per second" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [pt["kind"] for pt in data["per_token"]] == ["str", "chunks"]
    for pt in data["per_token"]:
        names = [row["name"] for row in pt["rows"]]
        assert names[0] == f"l0-core-{pt['kind']} (no recording)" and len(names) == 8
        assert all(row["ns_per_token"] > 0 and row["ratio"] > 0 for row in pt["rows"])
    assert data["sqlite"]["direct"]["events_per_s"] > 0
    assert data["sqlite"]["through_l0_run"]["events"] > 3 * 300
    assert [row["name"] for row in data["replay"]["rows"]] == [
        "live l0.run (no recording)", "replay from memory://", "replay from sqlite://"]

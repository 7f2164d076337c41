"""``l0 sessions``: list, show, export, delete, expire."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import l0_core as l0
from l0_core.cli import main
from l0_core.testing import Script, ScriptedSource

pytestmark = pytest.mark.usefixtures("instant")


async def _record(url: str) -> tuple[str, str]:
    ok = l0.run(stream=ScriptedSource([Script(["Hel", "lo", " wor"], fail_after=2),
                                       Script(["Hello world"])]),
                record=url, context={"request": "r-1"})
    assert await ok.read() == "Hello world"
    failed = l0.run(stream=ScriptedSource([Script(["x"], fail_after=1)] * 2),
                    retry=l0.Retry(network_attempts=1), record=url)
    with pytest.raises(l0.NetworkError):
        await failed.read()
    await ok.recording.wait()
    await failed.recording.wait()
    return ok.id, failed.id


def _sessions(url: str) -> tuple[str, str]:
    return asyncio.run(_record(url))


def test_list_shows_each_session_with_its_outcome(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    ok, failed = _sessions(url)
    assert main(["sessions", "list", "--store", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "STARTED", "(UTC)", "MODEL", "ATTEMPTS", "OUTCOME", "TOKENS",
                              "DURATION"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert set(rows) == {ok, failed}
    assert rows[ok].split()[3:7] == ["ScriptedSource", "2", "completed", "1"]
    assert "failed (NETWORK_ERROR)" in rows[failed]
    assert main(["sessions", "list", "--store", url, "--json"]) == 0
    listed = {item["stream_id"]: item for item in json.loads(capsys.readouterr().out)}
    assert listed[ok]["outcome"] == "completed" and listed[ok]["attempts"] == 2
    assert listed[ok]["tokens"] == 1 and listed[ok]["retries"] == 1
    assert listed[failed]["outcome"] == "failed" and listed[failed]["error"] == "NETWORK_ERROR"


def test_show_tells_the_story_of_a_session(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    ok, failed = _sessions(url)
    assert main(["sessions", "show", ok, "--store", url]) == 0
    out = capsys.readouterr().out
    whats = [line.split("s  ", 1)[1] for line in out.splitlines() if "s  " in line]
    assert whats[0] == 'session model ScriptedSource; context {"request": "r-1"}'
    assert whats[1:4] == ["attempt 1", "  2 token(s) streamed",
                          "error NETWORK_ERROR: ConnectionResetError: connection reset by peer "
                          "(scripted) -> retry"]
    assert whats[4] == "discard 5 char(s) from 0"
    assert whats[5].startswith("retry 1/6 in ")
    assert whats[6:] == ["attempt 2 (retry)", "  1 token(s) streamed",
                         "complete: 1 token(s), 11 char(s)", "session completed"]
    assert out.endswith("Final text:\nHello world\n")
    assert main(["sessions", "show", failed, "--store", url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["timeline"][-1]["what"].startswith("session failed: ALL_STREAMS_EXHAUSTED") or \
        shown["timeline"][-1]["what"].startswith("session failed: NETWORK_ERROR")
    assert shown["header"]["retry"]["network_attempts"] == 1


def test_export_writes_every_record_as_json_lines(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    ok, _ = _sessions(url)
    assert main(["sessions", "export", ok, "--store", url]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in lines] == list(range(len(lines)))
    assert lines[0]["type"] == "session" and lines[-1]["type"] == "SESSION_END"
    assert [r["data"] for r in lines if r["type"] == "token"] == ["Hel", "lo", "Hello world"]


def test_delete_expire_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    ok, _ = _sessions(url)
    assert main(["sessions", "delete", ok, "--store", url]) == 0
    assert main(["sessions", "delete", ok, "--store", url]) == 1
    assert main(["sessions", "show", ok, "--store", url]) == 1
    assert f"no recorded session '{ok}'" in capsys.readouterr().err
    assert main(["sessions", "expire", "0", "--store", url]) == 0
    assert "Deleted 1 session(s)" in capsys.readouterr().out
    assert main(["sessions", "list", "--store", url]) == 0
    assert "No recorded sessions" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main(["sessions", "list"]) == 2
    assert "no store is configured" in capsys.readouterr().err
    monkeypatch.setenv("L0_STORE", url)
    assert main(["sessions", "list"]) == 0
    assert main(["sessions", "list", "--store", "mongo://x"]) == 2
    assert "no installed store handles mongo://" in capsys.readouterr().err
    assert main(["sessions"]) == 2

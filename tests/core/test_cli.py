"""The ``l0`` command: ``l0 plugins``, ``l0 config``, ``l0 demo`` and ``python -m l0_core``."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from l0_core import cli, demo
from l0_core.plugins import host as plugins
from l0_core.plugins.host import PluginHost
from tests.core import fake_plugins as fp


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def host() -> PluginHost:
    host = PluginHost(entry_points=lambda: [
        fp.dist_entry_point("good", "good", "l0-good", "2.3"),
        importlib.metadata.EntryPoint("broken", "tests.core.broken_plugin_module", "l0"),
        fp.dist_entry_point("misspelt", "misspelt", "l0-misspelt", "0.1"),
        fp.dist_entry_point("raising", "raising", "l0-raising", "0.2"),
    ], block=["l0-raising"])
    plugins.reset_host(host)
    return host


# -- l0 plugins -------------------------------------------------------------------------------


def test_plugins_json_lists_records_with_reasons(
    host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plugins", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(listed) == {"good", "broken", "misspelt", "raising"}  # no built-ins by default
    good = listed["good"]
    assert (good["distribution"], good["version"], good["status"]) == ("l0-good", "2.3", "loaded")
    assert good["hooks"] == ["l0_register_guardrails", "l0_register_observers",
                             "l0_register_retry_policies"]
    # build_all() ran, so the registrations are known
    assert good["registered"] == {"guardrails": ["good-rule"],
                                  "retry_policies": ["good-policy"],
                                  "observers": ["good-observer"]}
    assert listed["broken"]["status"] == "failed"
    assert "ImportError" in listed["broken"]["reason"]
    assert listed["misspelt"]["status"] == "failed"
    assert "l0_register_guardrail" in listed["misspelt"]["reason"]
    assert (listed["raising"]["status"], listed["raising"]["reason"]) == (
        "blocked", "blocked by L0_DISABLE_PLUGINS")


def test_plugins_json_all_includes_builtins(
    host: PluginHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plugins", "--json", "--all"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "builtins"
    assert listed[0]["status"] == "builtin"
    assert "custom_pattern" in listed[0]["registered"]["guardrails"]
    assert len(listed) == 5


def test_plugins_human_listing(host: PluginHost, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["PLUGIN", "DISTRIBUTION", "VERSION", "STATUS"]
    assert lines[1].split() == ["good", "l0-good", "2.3", "loaded"]
    # columns are aligned: every row's status starts where the header's STATUS does
    column = lines[0].index("STATUS")
    rows = [line for line in lines[1:] if line and not line.startswith(" ")]
    assert {row[column:].split()[0] for row in rows} == {"loaded", "failed", "blocked"}
    assert "guardrails:" in out
    assert "good-rule" in out
    assert "retry policies: good-policy" in out
    assert "reason:" in out
    assert "import failed: ImportError" in out
    assert "builtins" not in out


def test_plugins_human_listing_shows_conflicts(capsys: pytest.CaptureFixture[str]) -> None:
    plugins.reset_host(PluginHost(entry_points=lambda: [
        fp.dist_entry_point("good", "good", "l0-good"),
        fp.dist_entry_point("dup", "duplicate", "l0-duplicate"),
    ]))
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "Conflicts:" in out
    assert "guardrail 'good-rule' is registered by l0-good and l0-duplicate" in out


def test_plugins_when_none_are_installed(capsys: pytest.CaptureFixture[str]) -> None:
    plugins.reset_host(PluginHost(autoload=False))
    assert cli.main(["plugins"]) == 0
    assert "No third-party plugins installed" in capsys.readouterr().out
    assert cli.main(["plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["plugins", "--all"]) == 0
    assert "builtins" in capsys.readouterr().out


# -- l0 config --------------------------------------------------------------------------------


def test_config_shows_values_and_their_sources(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins.reset_host(PluginHost(autoload=False))
    toml = project / "l0.toml"
    toml.write_text('guardrails = [{ name = "custom_pattern", patterns = ["x"] }]\n'
                    "[timeout]\ntotal = 60\n")
    monkeypatch.setenv("L0_RETRY", "strict")
    assert cli.main(["config"]) == 0
    out = capsys.readouterr().out
    assert f"Configuration files: {toml}" in out
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert rows["guardrails"].endswith(str(toml))
    assert '"custom_pattern"' in rows["guardrails"]
    assert rows["retry"].endswith("L0_RETRY")
    assert rows["timeout"].endswith(str(toml))
    assert rows["adapter"].endswith("default")
    assert rows["observers"].endswith("default")


def test_config_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugins.reset_host(PluginHost(autoload=False))
    (project / "l0.toml").write_text('adapter = "events"\n')
    assert cli.main(["config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["adapter"] == {"value": "events", "source": str(project / "l0.toml")}
    assert data["retry"] == {"value": None, "source": "default"}
    assert set(data) == {"guardrails", "observers", "retry", "timeout", "adapter", "store"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("guardrails = [\n", "malformed TOML"),
        ('guardrails = ["no-such-rule"]\n', "unknown guardrail 'no-such-rule'"),
        ('adapter = "openai"\n', "pip install l0-openai"),
        ("[timeout]\ntotal = \"soon\"\n", "key 'timeout.total'"),
    ],
)
def test_config_error_is_one_line_on_stderr_and_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    plugins.reset_host(PluginHost(autoload=False))
    (project / "l0.toml").write_text(text)
    assert cli.main(["config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("l0: configuration error: ")
    assert str(project / "l0.toml") in captured.err
    assert expected in captured.err


# -- l0 demo, help, python -m -----------------------------------------------------------------


def test_demo_passes_its_arguments_through(monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        got.append(argv)
        return 7

    monkeypatch.setattr(demo, "main", fake_main)
    assert cli.main(["demo", "--fast", "x"]) == 7
    assert got == [["--fast", "x"]]


@pytest.fixture
def no_plugins() -> None:
    plugins.reset_host(PluginHost(autoload=False))


@pytest.mark.usefixtures("no_plugins")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_demo_help_prints_usage_and_runs_nothing(
    capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    assert cli.main(["demo", flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: l0 demo [-l] [-h] [SCENARIO ...]\n")
    assert "pip install l0-openai" in out  # no plugin here registers l0_register_demo_scenarios


@pytest.mark.usefixtures("no_plugins")
def test_demo_rejects_unknown_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--bogus"]) == 2
    assert capsys.readouterr().err.endswith("l0 demo: error: unrecognized arguments: --bogus\n")


@pytest.mark.usefixtures("no_plugins")
def test_demo_without_scenarios_says_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 1
    assert "pip install l0-openai" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "plugins" in out
    assert "config" in out


def test_unknown_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["plugins", "--bogus"])
    assert info.value.code == 2


def test_python_dash_m_l0_core(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("L0_")}
    env["L0_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "l0_core", "plugins", "--json", "--all"],
        capture_output=True, text=True, env=env, cwd=project, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [p["name"] for p in json.loads(done.stdout)] == ["builtins"]

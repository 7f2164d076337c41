"""Configuration by name: files, environment, keyword arguments, and their one precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

import l0_core as l0
from l0_core.plugins import config as l0_config
from l0_core.plugins import host as plugins
from l0_core.plugins.host import PluginHost
from l0_core.testing import Script, ScriptedSource, instant_backoff
from tests.core import fake_plugins as fp


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty project directory as the cwd, and a host with only built-ins + GoodPlugin."""
    monkeypatch.chdir(tmp_path)
    host = PluginHost(autoload=False)
    host.register(fp.GoodPlugin(), name="good")
    plugins.reset_host(host)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def pyproject(project: Path, body: str) -> Path:
    return write(project / "pyproject.toml", f'[project]\nname = "app"\n\n[tool.l0]\n{body}')


# -- precedence -------------------------------------------------------------------------------


def test_defaults_when_nothing_is_configured(project: Path) -> None:
    cfg = l0_config.load(environ={})
    assert cfg.retry == l0.Retry()
    assert cfg.timeout == l0.Timeout()
    assert (cfg.guardrails, cfg.observers, cfg.adapter) == (None, None, None)
    assert {k: v["source"] for k, v in cfg.describe().items()} == dict.fromkeys(
        ("guardrails", "observers", "retry", "timeout", "adapter", "store"), "default")


def test_precedence_env_over_l0_toml_over_tool_l0_over_defaults(project: Path) -> None:
    py = pyproject(project, 'adapter = "text"\nguardrails = ["custom_pattern"]\n'
                            "[tool.l0.timeout]\ninitial_token = 1\ninter_token = 2\ntotal = 3\n")
    toml = write(project / "l0.toml", 'guardrails = ["good-rule"]\n'
                                      "[timeout]\ninter_token = 20\ntotal = 30\n")
    cfg = l0_config.load(environ={"L0_TIMEOUT_TOTAL": "300"})
    # per key: the highest layer that sets it wins; tables merge key by key
    assert cfg.timeout == l0.Timeout(initial_token=1, inter_token=20, total=300)
    assert [g.name for g in cfg.guardrails or []] == ["good-rule"]  # lists replace
    assert cfg.adapter == "text"
    sources = {k: v["source"] for k, v in cfg.describe().items()}
    assert sources["adapter"] == f"{py} [tool.l0]"
    assert sources["guardrails"] == str(toml)
    assert sources["timeout"] == "L0_TIMEOUT_TOTAL"
    assert sources["retry"] == "default"


def test_each_layer_alone_beats_the_default(project: Path) -> None:
    pyproject(project, 'retry = "strict"\n')
    assert l0_config.load(environ={}).retry == l0.Retry.strict()
    write(project / "l0.toml", 'retry = "minimal"\n')
    assert l0_config.load(environ={}).retry == l0.Retry.minimal()
    assert l0_config.load(environ={"L0_RETRY": "edge"}).retry == l0.Retry.edge()


def test_retry_table_merges_policy_and_options_across_layers(project: Path) -> None:
    pyproject(project, '[tool.l0.retry]\npolicy = "good-policy"\nbase_delay = 0.25\n')
    write(project / "l0.toml", "[retry]\nmax_delay = 4.0\n")
    cfg = l0_config.load(environ={"L0_RETRY_MAX_RETRIES": "11"})
    assert cfg.retry.attempts == 9  # from the policy named in [tool.l0]
    assert (cfg.retry.base_delay, cfg.retry.max_delay, cfg.retry.max_retries) == (0.25, 4.0, 11)
    assert cfg.describe()["retry"]["value"]["policy"] == "good-policy"


async def test_keyword_arguments_beat_every_layer(project: Path) -> None:
    write(project / "l0.toml", 'retry = "none"\nguardrails = [{ name = "custom_pattern", '
                               'patterns = ["secret"], severity = "fatal" }]\n')
    cfg = l0_config.load(environ={"L0_RETRY": "none"})

    # from config: no retries, and the fatal guardrail stops the session
    source = ScriptedSource([Script([])])
    with pytest.raises(l0.L0Error) as info:
        await l0.run(stream=source, config=cfg).read()
    assert info.value.code is l0.ErrorCode.ZERO_OUTPUT
    assert source.calls == 1
    with pytest.raises(l0.GuardrailError):
        await l0.run(stream=ScriptedSource([Script(["a secret"])]), config=cfg).read()

    # keyword arguments win
    source = ScriptedSource([Script([]), Script(["ok"])])
    with instant_backoff():
        stream = l0.run(stream=source, config=cfg, retry=l0.Retry(attempts=1))
        assert await stream.read() == "ok"
    stream = l0.run(stream=ScriptedSource([Script(["a secret"])]), config=cfg, guardrails=[])
    assert await stream.read() == "a secret"


async def test_run_reads_the_process_config_once_and_reload_rereads(project: Path) -> None:
    write(project / "l0.toml", 'guardrails = [{ name = "custom_pattern", '
                               'patterns = ["bad"], severity = "warning" }]\n')
    stream = l0.run(stream=ScriptedSource([Script(["bad"])]))
    await stream.read()
    assert [v.rule for v in stream.state.violations] == ["custom_pattern"]
    write(project / "l0.toml", "")
    stream = l0.run(stream=ScriptedSource([Script(["bad"])]))
    await stream.read()
    assert len(stream.state.violations) == 1  # still the cached configuration
    l0.reload_config()
    stream = l0.run(stream=ScriptedSource([Script(["bad"])]))
    await stream.read()
    assert stream.state.violations == []


def test_set_config_replaces_the_process_config(project: Path) -> None:
    mine = l0_config.load(environ={"L0_RETRY": "none"})
    l0_config.set_config(mine)
    assert l0_config.defaults_for_run() is mine
    l0_config.set_config(None)
    assert l0_config.defaults_for_run() is not mine


# -- files ------------------------------------------------------------------------------------


def test_nearest_directory_with_a_config_file_is_used(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "l0.toml", 'adapter = "events"\n')
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert l0_config.load(environ={}).adapter == "events"
    # a nearer pyproject.toml (even without [tool.l0]) stops the search
    write(project / "a" / "pyproject.toml", '[project]\nname = "inner"\n')
    assert l0_config.load(environ={}).adapter is None


def test_l0_config_names_a_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = write(project / "elsewhere.toml", 'adapter = "events"\n')
    monkeypatch.setenv("L0_CONFIG", str(other))
    cfg = l0_config.load(environ={})
    assert cfg.adapter == "events"
    assert cfg.describe()["adapter"]["source"] == str(other)
    monkeypatch.setenv("L0_CONFIG", str(project / "missing.toml"))
    with pytest.raises(l0.ConfigError, match=r"L0_CONFIG=.*missing\.toml: no such file"):
        l0_config.load(environ={})


def test_observers_from_config_get_their_options(project: Path) -> None:
    write(project / "l0.toml", 'observers = ["good-observer", { name = "logging", '
                               'level = "DEBUG" }]\n')
    cfg = l0_config.load(environ={})
    assert [o.name for o in cfg.observers or []] == ["good-observer", "logging"]
    assert [o.options for o in cfg.observers or []] == [{}, {"level": "DEBUG"}]


# -- environment ------------------------------------------------------------------------------


def test_env_lists_as_commas_or_json(project: Path) -> None:
    cfg = l0_config.load(environ={"L0_GUARDRAILS": "good-rule, custom_pattern"})
    assert [g.name for g in cfg.guardrails or []] == ["good-rule", "custom_pattern"]
    cfg = l0_config.load(environ={
        "L0_GUARDRAILS": '[{"name": "custom_pattern", "patterns": ["x"]}]',
        "L0_OBSERVERS": "good-observer",
        "L0_ADAPTER": "events",
    })
    assert cfg.guardrails == [l0.RuleSpec("custom_pattern", {"patterns": ["x"]})]
    assert [o.name for o in cfg.observers or []] == ["good-observer"]
    assert cfg.adapter == "events"


def test_env_retry_and_timeout_variables(project: Path) -> None:
    cfg = l0_config.load(environ={
        "L0_RETRY": '{"policy": "exponential", "base_delay": 0.1}',
        "L0_RETRY_ATTEMPTS": "7",
        "L0_RETRY_NETWORK_ATTEMPTS": "2",
        "L0_TIMEOUT_INITIAL_TOKEN": "off",
        "L0_TIMEOUT_INTER_TOKEN": "4.5",
    })
    assert cfg.retry == l0.Retry.exponential(base_delay=0.1, attempts=7, network_attempts=2)
    assert cfg.timeout == l0.Timeout(initial_token=None, inter_token=4.5)


def test_process_environment_is_read_by_default(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("L0_ADAPTER", "events")
    assert l0_config.load().adapter == "events"


# -- errors -----------------------------------------------------------------------------------


def test_unknown_guardrail_lists_installed_names(project: Path) -> None:
    toml = write(project / "l0.toml", 'guardrails = ["no-such-rule"]\n')
    with pytest.raises(l0.ConfigError) as info:
        l0_config.load(environ={})
    message = info.value.message
    assert message.startswith(f"{toml}: unknown guardrail 'no-such-rule'")
    assert "Installed guardrails: custom_pattern, good-rule" in message
    assert info.value.code is l0.ErrorCode.UNKNOWN_PLUGIN


@pytest.mark.parametrize(("kind", "name"), list(plugins.FIRST_PARTY))
def test_first_party_name_says_which_package_provides_it(
    project: Path, kind: str, name: str
) -> None:
    package = plugins.FIRST_PARTY[(kind, name)]
    key = {"adapters": "adapter", "observers": "observers", "stores": "store"}[kind]
    value = {"adapter": f'"{name}"', "observers": f'["{name}"]',
             "store": f'"{name}://localhost/l0"'}[key]
    write(project / "l0.toml", f"{key} = {value}\n")
    with pytest.raises(l0.ConfigError) as info:
        l0_config.load(environ={})
    assert f"It is provided by the {package} package: pip install {package}." in (
        info.value.message)


def test_unknown_retry_policy_and_observer(project: Path) -> None:
    with pytest.raises(l0.ConfigError, match=r"L0_RETRY: unknown retry policy 'patient'.*"
                                             r"recommended"):
        l0_config.load(environ={"L0_RETRY": "patient"})
    with pytest.raises(l0.ConfigError, match=r"L0_OBSERVERS: unknown observer 'nope'.*"
                                             r"good-observer, logging"):
        l0_config.load(environ={"L0_OBSERVERS": "nope"})


@pytest.mark.parametrize("filename", ["l0.toml", "pyproject.toml"])
def test_malformed_toml_names_the_file(project: Path, filename: str) -> None:
    bad = write(project / filename, "guardrails = [\n")
    with pytest.raises(l0.ConfigError) as info:
        l0_config.load(environ={})
    assert info.value.message.startswith(f"{bad}: malformed TOML")


def test_wrong_type_in_l0_toml_names_file_and_key(project: Path) -> None:
    toml = write(project / "l0.toml", '[timeout]\ninitial_token = "soon"\n')
    with pytest.raises(l0.ConfigError) as info:
        l0_config.load(environ={})
    assert f"{toml}: key 'timeout.initial_token'" in info.value.message
    assert info.value.code is l0.ErrorCode.CONFIG_ERROR


def test_wrong_type_in_tool_l0_names_the_table(project: Path) -> None:
    py = pyproject(project, "guardrails = 3\n")
    with pytest.raises(l0.ConfigError, match=r"key 'guardrails'") as info:
        l0_config.load(environ={})
    assert str(py) in info.value.message
    assert "[tool.l0]" in info.value.message


def test_tool_l0_must_be_a_table(project: Path) -> None:
    write(project / "pyproject.toml", '[tool]\nl0 = "yes"\n')
    with pytest.raises(l0.ConfigError, match=r"\[tool\.l0\] must be a table"):
        l0_config.load(environ={})


def test_wrong_type_in_env_names_the_variable_and_key(project: Path) -> None:
    with pytest.raises(l0.ConfigError) as info:
        l0_config.load(environ={"L0_TIMEOUT_TOTAL": "soon"})
    assert "L0_TIMEOUT_TOTAL" in info.value.message
    assert "key 'timeout.total'" in info.value.message


def test_unknown_keys_are_errors(project: Path) -> None:
    write(project / "l0.toml", "guardrail = []\n")
    with pytest.raises(l0.ConfigError, match=r"key 'guardrail': Extra inputs"):
        l0_config.load(environ={})
    write(project / "l0.toml", "[retry]\nattempt = 2\n")
    with pytest.raises(l0.ConfigError, match=r"unknown retry option\(s\) attempt"):
        l0_config.load(environ={})


def test_bad_retry_option_value_names_the_policy(project: Path) -> None:
    write(project / "l0.toml", '[retry]\npolicy = "strict"\nattempts = -1\n')
    with pytest.raises(l0.ConfigError,
                       match=r"retry policy 'strict': .*key 'retry\.attempts' must be a whole"):
        l0_config.load(environ={})


def test_config_error_is_a_value_error(project: Path) -> None:
    write(project / "l0.toml", "adapter = 1\n")
    with pytest.raises(ValueError, match="adapter"):
        l0_config.load(environ={})

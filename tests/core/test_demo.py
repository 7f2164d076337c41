"""``l0 demo`` in the core: the screen's layout, finding scenarios through the
``l0_register_demo_scenarios`` hook, and the command line (help, listing, selection, errors).

The scenarios here are scripted in-process streams registered by a plugin in code, so these
tests need no provider package; tests/openai/test_demo.py runs l0-openai's real show.
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core import demo
from l0_core.demo import Scenario, Screen, Stage
from l0_core.plugins import host as plugins
from l0_core.plugins.hookspecs import Register
from l0_core.plugins.host import PluginHost
from l0_core.testing import Script, ScriptedSource

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["Streams", " fail", " in", " many", " ways", ";", " L0", " keeps", " the", " text",
         " whole", "."]
WHOLE = "".join(WORDS)
NO_WAIT = l0.Retry(attempts=2, base_delay=0.0, strategy="fixed")


def _screen(width: int = 40) -> tuple[Screen, io.StringIO]:
    out = io.StringIO()
    return Screen(out, width=width, colour=False), out


# -- the screen --------------------------------------------------------------------------------


def test_streamed_text_is_indented_and_wrapped_before_a_word_that_does_not_fit() -> None:
    screen, out = _screen(40)
    for token in WORDS * 2:
        screen.text(token)
    screen.end_text()
    assert out.getvalue() == (
        "    Streams fail in many ways; L0 keeps\n"
        "    the text whole.Streams fail in many\n"
        "    ways; L0 keeps the text whole.\n"
    )
    assert all(len(line) <= 40 for line in out.getvalue().splitlines())


def test_text_after_a_note_starts_at_the_text_indent_not_at_column_0() -> None:
    screen, out = _screen(40)
    for token in WORDS[:5]:
        screen.text(token)
    screen.note("✗ NETWORK_ERROR: the connection was cut in the middle → retrying")
    screen.note("↺ discard 25 chars of attempt 1")
    for token in WORDS:
        screen.text(token)
    screen.end_text()
    assert out.getvalue() == (
        "    Streams fail in many ways\n"
        "  ✗ NETWORK_ERROR: the connection was\n"
        "    cut in the middle → retrying\n"
        "  ↺ discard 25 chars of attempt 1\n"
        "    Streams fail in many ways; L0 keeps\n"
        "    the text whole.\n"
    )


def test_a_word_split_across_tokens_moves_whole_to_the_next_line() -> None:
    screen, out = _screen(40)
    screen.text("x" * 30)
    for token in [" stre", "am", "ing", " on"]:
        screen.text(token)
    screen.end_text()
    assert out.getvalue() == "    " + "x" * 30 + "\n    streaming on\n"


def test_newlines_blank_lines_and_indentation_of_the_model_are_kept() -> None:
    screen, out = _screen(40)
    screen.text("first line\n\n  indented\nlast ")
    screen.end_text()
    assert out.getvalue() == "    first line\n\n      indented\n    last\n"


def test_a_word_longer_than_a_line_is_cut_and_wide_characters_count_twice() -> None:
    screen, out = _screen(40)
    screen.text("y" * 50 + " 漢字" * 10)
    screen.end_text()
    assert out.getvalue() == (
        "    " + "y" * 36 + "\n"
        "    " + "y" * 14 + " 漢字 漢字 漢字 漢字\n"
        "    漢字 漢字 漢字 漢字 漢字 漢字\n"
    )


def test_colours_only_when_asked() -> None:
    plain, coloured = io.StringIO(), io.StringIO()
    Screen(plain, width=60, colour=False).note("✓ ok", "32")
    Screen(coloured, width=60, colour=True).note("✓ ok", "32")
    assert plain.getvalue() == "  ✓ ok\n"
    assert coloured.getvalue() == "\x1b[32m  ✓ ok\x1b[0m\n"


# -- scenarios from a plugin ---------------------------------------------------------------------


def _scenario(name: str, title: str, scripts: list[Script], **options: Any) -> Scenario:
    async def play(stage: Stage) -> int:
        source = ScriptedSource(scripts)
        await stage.show(l0.run(stream=source, retry=NO_WAIT, on_event=stage.on_event,
                                **options))
        return source.calls

    return Scenario(name=name, title=title, fault="scripted", play=play, expected=WHOLE,
                    setting="scripted streams")


class ScriptedScenarios:
    """A plugin registering two scenarios; ``played`` counts the ones that ran."""

    def __init__(self) -> None:
        self.played: list[str] = []

    @l0.hookimpl
    def l0_register_demo_scenarios(self, register: Register) -> None:
        for scenario in (
            _scenario("clean", "clean stream", [Script(WORDS)]),
            _scenario("cut-midstream", "connection cut",
                      [Script(WORDS, fail_after=5, error=ConnectionResetError("cut")),
                       Script(WORDS)]),
        ):
            register(self._counted(scenario))

    def _counted(self, scenario: Scenario) -> Scenario:
        async def play(stage: Stage) -> int:
            self.played.append(scenario.name)
            return await scenario.play(stage)

        return Scenario(scenario.name, scenario.title, scenario.fault, play, scenario.expected,
                        scenario.setting)


class BrokenScenarios:
    @l0.hookimpl
    def l0_register_demo_scenarios(self, register: Register) -> None:
        register(_scenario("fine-one", "fine", [Script(WORDS)]))
        register(_scenario("Not Kebab", "bad name", [Script(WORDS)]))


class RaisingScenarios:
    @l0.hookimpl
    def l0_register_demo_scenarios(self, register: Register) -> None:
        raise RuntimeError("no scenarios today")


@pytest.fixture
def scripted() -> Iterator[ScriptedScenarios]:
    host = PluginHost(autoload=False)
    plugin = ScriptedScenarios()
    host.register(plugin, name="scripted-scenarios")
    plugins.reset_host(host)
    yield plugin
    plugins.reset_host()


@pytest.fixture
def no_scenarios() -> Iterator[None]:
    plugins.reset_host(PluginHost(autoload=False))
    yield
    plugins.reset_host()


def _main(*argv: str, width: int = 60) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = demo.main(list(argv), out=out, err=err, width=width)
    return status, out.getvalue(), err.getvalue()


def test_scenarios_are_found_through_the_hook_in_registration_order(
    scripted: ScriptedScenarios,
) -> None:
    catalog = demo.find_scenarios()
    assert list(catalog.scenarios) == ["clean", "cut-midstream"]
    assert catalog.owners == {"clean": "scripted-scenarios",
                              "cut-midstream": "scripted-scenarios"}
    assert catalog.problems == []
    record = plugins.get_host().records[-1]
    assert record.hooks == ["l0_register_demo_scenarios"]


def test_a_broken_scenario_plugin_is_reported_and_the_others_still_count() -> None:
    host = PluginHost(autoload=False)
    host.register(ScriptedScenarios(), name="scripted")
    host.register(BrokenScenarios(), name="broken")
    host.register(RaisingScenarios(), name="raising")
    host.register(ScriptedScenarios(), name="again")
    catalog = demo.find_scenarios(host)
    assert list(catalog.scenarios) == ["clean", "cut-midstream", "fine-one"]
    assert catalog.problems == [
        "broken: l0_register_demo_scenarios raised ValueError: scenario name 'Not Kebab' is "
        "not kebab-case (lower-case letters and digits joined by '-')",
        "raising: l0_register_demo_scenarios raised RuntimeError: no scenarios today",
        "scenario 'clean' is registered by both scripted and again; the one of again is left out",
        "scenario 'cut-midstream' is registered by both scripted and again; the one of again "
        "is left out",
    ]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_scenarios_and_runs_nothing(
    scripted: ScriptedScenarios, flag: str,
) -> None:
    status, out, err = _main(flag)
    assert (status, err, scripted.played) == (0, "", [])
    assert out.startswith("usage: l0 demo [-l] [-h] [SCENARIO ...]\n")
    assert out.endswith(
        "scenarios (from scripted-scenarios):\n"
        "  clean          clean stream: scripted\n"
        "  cut-midstream  connection cut: scripted\n"
    )


def test_list_prints_one_scenario_a_line(scripted: ScriptedScenarios) -> None:
    assert _main("--list") == (0, "  clean          clean stream: scripted\n"
                                  "  cut-midstream  connection cut: scripted\n", "")
    assert scripted.played == []


def test_an_unknown_option_is_a_usage_error(scripted: ScriptedScenarios) -> None:
    assert _main("--fast") == (2, "", "usage: l0 demo [-l] [-h] [SCENARIO ...]\n"
                                      "l0 demo: error: unrecognized arguments: --fast\n")
    assert scripted.played == []


def test_an_unknown_scenario_lists_the_known_ones(scripted: ScriptedScenarios) -> None:
    status, out, err = _main("cut-midstrem")
    assert (status, out, scripted.played) == (2, "", [])
    assert err.splitlines()[-1] == (
        "l0 demo: error: unknown scenario 'cut-midstrem'; did you mean 'cut-midstream'? "
        "(known scenarios: clean, cut-midstream)"
    )


def test_one_scenario_by_name_runs_alone_laid_out_evenly(scripted: ScriptedScenarios) -> None:
    status, out, err = _main("cut-midstream", width=44)
    assert (status, err, scripted.played) == (0, "", ["cut-midstream"])
    assert out == (
        "L0 demo: scripted streams.\n"
        "\n"
        "▶ connection cut  (scripted)\n"
        "    Streams fail in many ways\n"
        "  ✗ NETWORK_ERROR: ConnectionResetError: cut\n"
        "    → retrying\n"
        "  ↺ discard 25 chars of attempt 1\n"
        "  ↻ retry 1 in 0.00s\n"
        "    Streams fail in many ways; L0 keeps the\n"
        "    text whole.\n"
        "  ✓ recovered  final text: 'Streams fail in\n"
        "    many ways; L0 keeps the text whole.'\n"
    )


def test_every_scenario_runs_and_a_summary_follows(scripted: ScriptedScenarios) -> None:
    status, out, _ = _main()
    assert status == 0
    assert scripted.played == ["clean", "cut-midstream"]
    table = re.sub(r"\d+\.\d\ds", "T", out[out.index("scenario  "):])
    assert table == (
        "scenario       result  requests  recovery  time\n"
        "clean          ok      1         -         T\n"
        "cut-midstream  ok      2         retry     T\n"
        "\n"
        "2 passed, 0 failed\n"
    )


def test_a_failing_scenario_makes_the_exit_status_1() -> None:
    async def wrong(stage: Stage) -> int:
        await stage.show(l0.run(stream=ScriptedSource([Script(["not it"])])))
        return 1

    class Wrong:
        @l0.hookimpl
        def l0_register_demo_scenarios(self, register: Register) -> None:
            register(Scenario("wrong", "wrong text", "none", wrong, expected=WHOLE))

    host = PluginHost(autoload=False)
    host.register(Wrong())
    plugins.reset_host(host)
    status, out, _ = _main("wrong")
    assert status == 1
    assert "  ✗ failed  final text: 'not it'\n" in out


def test_without_a_scenario_plugin_the_demo_says_what_to_install(no_scenarios: None) -> None:
    status, out, err = _main()
    assert (status, out) == (1, "")
    assert err == ("l0 demo: no demo scenarios are installed; they come with the OpenAI "
                   "integration: pip install l0-openai\n")
    status, out, _ = _main("--help")
    assert status == 0
    assert out.endswith("No demo scenarios are installed; they come with the OpenAI "
                        "integration: pip install l0-openai.\n")


# -- the core does not depend on a provider -------------------------------------------------------


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                  "import_module", "__import__")):
            found.add(node.args[0].value)
    return found


def test_no_core_module_imports_a_provider_package() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in _imported_modules(path)
                                            if m.split(".")[0].startswith("l0_")
                                            and m.split(".")[0] != "l0_core")
        for path in sorted((ROOT / "l0_core").rglob("*.py"))
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}

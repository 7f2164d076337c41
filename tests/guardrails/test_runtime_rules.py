"""The built-in rules through l0.run: severities, presets, sessions, configuration by name."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import l0_core as l0
from l0_core.guardrails.rule import create_rules
from l0_core.guardrails.rules import JsonRule, MarkdownRule, PatternRule, ZeroOutputRule
from l0_core.guardrails.rules.presets import PRESETS, RuleGroup
from l0_core.plugins import config
from l0_core.plugins.host import get_host
from l0_core.testing import Script, ScriptedSource
from tests.core.helpers import Recorder, consume

EVERY_TOKEN = l0.CheckIntervals(guardrails=1)  # check each token before delivery

pytestmark = pytest.mark.usefixtures("instant")


async def test_an_error_stops_the_attempt_before_the_bad_token_and_retries() -> None:
    source = ScriptedSource([Script(['{"a": ', "1}", "}", ' {"late": 1}']),
                             Script(['{"a": ', "1}"])])
    got = await consume(l0.run(stream=source, guardrails=[l0.Guardrails.json()],
                               check_intervals=EVERY_TOKEN))
    assert got.error is None and got.text == '{"a": 1}'
    assert source.calls == 2
    stream_tokens = [e.text for e in got.events if e.is_token]
    assert "}" not in stream_tokens[:3]  # the impossible "}" was never delivered
    assert stream_tokens[:2] == ['{"a": ', "1}"]
    assert [e.is_discard for e in got.events].count(True) == 1


async def test_a_fatal_violation_halts_mid_stream() -> None:
    source = ScriptedSource([Script(["Well. ", "I cannot", " provide", " that", " today",
                                     " at all"]), Script(["never used"])])
    rule = l0.Guardrails.pattern(severity={"refusal": "fatal"})
    stream = l0.run(check_intervals=EVERY_TOKEN, stream=source, guardrails=[rule])
    got = await consume(stream)
    assert isinstance(got.error, l0.GuardrailError)
    assert got.error.code is l0.ErrorCode.FATAL_GUARDRAIL_VIOLATION
    assert source.calls == 1
    assert got.text == "Well. I cannot provide"  # " that" decided it and was not delivered
    assert source.all_closed
    (v,) = stream.state.violations
    assert (v.rule, v.severity, v.context["category"]) == ("pattern", "fatal", "refusal")


async def test_a_non_recoverable_error_halts() -> None:
    source = ScriptedSource([Script(["{}", "}"]), Script(["{}"])])
    got = await consume(l0.run(stream=source,
                               guardrails=[l0.Guardrails.json(recoverable=False)]))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is l0.ErrorCode.FATAL_GUARDRAIL_VIOLATION
    assert source.calls == 1


async def test_a_warning_is_recorded_and_the_stream_goes_on() -> None:
    seen: list[l0.Violation] = []
    source = ScriptedSource([Script(["Sure", "! The answer", " is 4."])])
    stream = l0.run(stream=source, guardrails=l0.Guardrails.recommended(),
                    on_violation=seen.append)
    assert await stream.read() == "Sure! The answer is 4."
    assert [(v.rule, v.severity, v.context["category"]) for v in stream.state.violations] == [
        ("pattern", "warning", "hedging")]
    assert seen == stream.state.violations


async def test_completion_errors_retry() -> None:
    source = ScriptedSource([Script(["```python\n", "x = 1\n"]), Script(["```\nx\n", "```"])])
    stream = l0.run(stream=source, guardrails=[l0.Guardrails.markdown()])
    assert await stream.read() == "```\nx\n```"
    assert [e.code for e in stream.errors] == [l0.ErrorCode.GUARDRAIL_VIOLATION]
    placeholders = ScriptedSource([Script(["Dear ", "[Your Name]", ","]), Script(["Dear Ann,"])])
    stream = l0.run(stream=placeholders, guardrails=[l0.Guardrails.pattern()])
    assert await stream.read() == "Dear Ann,"
    assert placeholders.calls == 2


async def test_zero_output_noise_retries() -> None:
    source = ScriptedSource([Script(["....", "...."]), Script(["Real text."])])
    assert await l0.run(stream=source, guardrails=l0.Guardrails.minimal()).read() == "Real text."
    assert source.calls == 2


async def test_check_intervals_batch_the_streaming_checks() -> None:
    source = ScriptedSource([Script(["{", '"a"', ": 1", "}", "}", "x", "y"]), Script(["{}"])])
    stream = l0.run(stream=source, guardrails=[l0.Guardrails.json()],
                    check_intervals=l0.CheckIntervals(guardrails=3))
    assert await stream.read() == "{}"
    (v,) = stream.state.violations
    assert v.position == 8  # still the exact character, though checked in a batch


async def test_continuation_refeeds_the_checkpoint_so_rules_keep_their_state() -> None:
    source = ScriptedSource([Script(['{"a": [1, ', "2, ", "3"], fail_after=3),
                             Script(['], "b": 2}'])])
    stream = l0.run(stream=source, guardrails=[l0.Guardrails.json()],
                    continue_from_last_good_token=True,
                    check_intervals=l0.CheckIntervals(guardrails=1, checkpoint=1))
    text = await stream.read()
    assert json.loads(text) == {"a": [1, 2, 3], "b": 2}
    assert stream.state.violations == []


# -- one rule state per session -----------------------------------------------------------------

def paced(tokens: list[str]) -> Callable[[], AsyncIterator[str]]:
    async def gen() -> AsyncIterator[str]:
        for t in tokens:
            await asyncio.sleep(0)  # let the other sessions run between tokens
            yield t

    return gen


async def test_one_preset_list_shared_by_100_concurrent_sessions() -> None:
    shared = l0.Guardrails.recommended()
    good_json = ['{"id": ', "1, ", '"tags": ["a", ', '"b"]}']
    bad_json = ['{"id": ', "1}", "}", "]"]
    refusal = ["Hmm. ", "I cannot", " provide", " that."]
    prose = ["The ", "answer ", "is ", "4."]

    async def one(i: int) -> tuple[int, str, list[str]]:
        kind = i % 4
        first = [good_json, bad_json, refusal, prose][kind]
        attempts = [first, ["Fixed ", "answer."]]
        calls = 0

        def factory() -> AsyncIterator[str]:
            nonlocal calls
            calls += 1
            return paced(attempts[calls - 1])()

        stream = l0.run(stream=factory, guardrails=shared)
        text = await stream.read()
        return calls, text, [v.rule for v in stream.state.violations]

    results = await asyncio.gather(*(one(i) for i in range(100)))
    for i, (calls, text, rules) in enumerate(results):
        kind = i % 4
        if kind == 0:
            assert (calls, text, rules) == (1, "".join(good_json), []), i
        elif kind == 1:
            assert (calls, text, rules) == (2, "Fixed answer.", ["json"]), i
        elif kind == 2:
            assert (calls, text, rules) == (2, "Fixed answer.", ["pattern"]), i
        else:
            assert (calls, text, rules) == (1, "The answer is 4.", []), i


def test_rule_objects_given_as_instances_are_copied_per_session() -> None:
    rule = JsonRule(require=True)
    made = create_rules([rule, PatternRule, "markdown"])
    assert made[0] is not rule and isinstance(made[0], JsonRule)
    assert isinstance(made[1], PatternRule) and isinstance(made[2], MarkdownRule)


# -- presets --------------------------------------------------------------------------------------

def test_presets_are_lists_of_specs() -> None:
    g = l0.Guardrails
    assert [s.name for s in g.minimal()] == ["json", "zero_output"]
    assert [s.name for s in g.recommended()] == ["json", "markdown", "pattern", "zero_output"]
    assert [s.name for s in g.strict()] == ["json", "markdown", "latex", "pattern",
                                           "repetition", "zero_output"]
    assert g.json_only()[0] == l0.RuleSpec("json", {"require": True})
    assert [s.name for s in g.markdown_only()] == ["markdown", "zero_output"]
    assert [s.name for s in g.latex_only()] == ["latex", "zero_output"]
    assert g.none() == [] and g.preset("none") == []
    assert g.preset("strict") == g.strict()
    assert g.presets() == list(PRESETS)
    assert g.recommended() is not g.recommended()  # a new list each time
    with pytest.raises(ValueError, match="unknown guardrail preset"):
        g.preset("paranoid")


def test_rule_specs_of_the_namespace() -> None:
    g = l0.Guardrails
    assert g.pattern(["refusal"], severity="fatal") == l0.RuleSpec(
        "pattern", {"categories": ["refusal"], "severity": "fatal"})
    assert g.stall(max_gap=2.0) == l0.RuleSpec("stall", {"max_gap": 2.0})
    specs = [g.json(), g.strict_json(), g.markdown(), g.latex(), g.pattern(), g.zero_output(),
             g.stall(), g.repetition(), g.custom_pattern(["x"])]
    rules = create_rules(specs)
    assert [r.name for r in rules] == [s.name for s in specs]


def test_preset_names_expand_wherever_rule_names_are_used() -> None:
    rules = create_rules(["recommended", l0.RuleSpec("json_only")])
    assert [r.name for r in rules] == ["json", "markdown", "pattern", "zero_output", "json",
                                       "zero_output"]
    with pytest.raises(TypeError, match="takes no options"):
        create_rules([l0.RuleSpec("strict", {"severity": "warning"})])
    group = l0.RuleSpec("minimal").create()  # straight through the registry: one group rule
    assert isinstance(group, RuleGroup) and group.name == "minimal"
    assert [r.name for r in group.rules] == ["json", "zero_output"]
    assert group.check_delta("{}}", 0)
    assert group.check_complete("") is not None


def test_every_rule_and_preset_is_registered() -> None:
    names = set(get_host().registry("guardrails").names())
    assert {"json", "strict_json", "markdown", "latex", "pattern", "custom_pattern",
            "zero_output", "stall", "repetition"} <= names
    assert set(PRESETS) <= names


# -- configuration by name ------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    config.set_config(None)
    return tmp_path


async def test_rules_enabled_by_name_in_l0_toml(project: Path) -> None:
    (project / "l0.toml").write_text(
        'guardrails = ["json", { name = "pattern", categories = ["refusal"] }]\n'
    )
    cfg = l0.reload_config()
    assert cfg.guardrails == [l0.RuleSpec("json"),
                              l0.RuleSpec("pattern", {"categories": ["refusal"]})]
    hedging = ScriptedSource([Script(["Sure! ", "Here you go."])])
    assert await l0.run(stream=hedging).read() == "Sure! Here you go."  # not selected
    refusal = ScriptedSource([Script(["I must decline", "."]), Script(["OK."])])
    stream = l0.run(stream=refusal)
    assert await stream.read() == "OK."
    assert [v.context["category"] for v in stream.state.violations] == ["refusal"]
    broken = ScriptedSource([Script(["[{}]", "]"]), Script(["[]"])])
    assert await l0.run(stream=broken).read() == "[]"


async def test_rules_enabled_by_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("L0_GUARDRAILS", "json,pattern")
    cfg = l0.reload_config()
    assert [g.name for g in cfg.guardrails or []] == ["json", "pattern"]
    source = ScriptedSource([Script(["As an AI", ", I think."]), Script(["I think."])])
    assert await l0.run(stream=source).read() == "I think."


async def test_a_preset_by_name_in_config(project: Path) -> None:
    (project / "l0.toml").write_text('guardrails = ["recommended"]\n')
    cfg = l0.reload_config()
    assert cfg.guardrails == [l0.RuleSpec("recommended")]
    source = ScriptedSource([Script(['{"a": 1}', "}"]), Script(['{"a": 1}'])])
    rec = Recorder()
    assert await l0.run(stream=source, on_event=rec).read() == '{"a": 1}'
    assert source.calls == 2
    starts = [e["ruleId"] for e in rec.of("GUARDRAIL_RULE_START")]
    assert starts == ["json", "markdown", "pattern", "zero_output"]  # expanded: four rules


def test_an_unknown_rule_name_in_config_is_an_error(project: Path) -> None:
    (project / "l0.toml").write_text('guardrails = ["jsn"]\n')
    with pytest.raises(l0.ConfigError, match="unknown guardrail 'jsn'"):
        l0.reload_config()


def test_options_of_rules_are_checked_when_a_session_starts() -> None:
    with pytest.raises(ValueError, match="unknown category"):
        create_rules([l0.Guardrails.pattern(["nonsense"])])
    with pytest.raises(TypeError):
        create_rules([l0.Guardrails.zero_output(bogus=1)])
    assert isinstance(create_rules([ZeroOutputRule])[0], ZeroOutputRule)


class _RetiresAfter:
    """Checks two pieces while streaming, then retires; records every call."""

    name = "retires"

    def __init__(self) -> None:
        self.streaming = True
        self.deltas: list[str] = []
        self.completed: list[str] = []

    def check_delta(self, delta: str, offset: int) -> None:
        self.deltas.append(delta)
        if len(self.deltas) == 2:
            self.streaming = False

    def check_complete(self, content: str) -> None:
        self.completed.append(content)


async def test_a_rule_that_turns_streaming_off_is_not_called_again_until_the_end() -> None:
    made: list[_RetiresAfter] = []

    def factory() -> _RetiresAfter:
        made.append(_RetiresAfter())
        return made[-1]

    tokens = [f"t{i} " for i in range(10)]
    stream = l0.run(stream=ScriptedSource([Script(tokens)]),
                    guardrails=[factory, PatternRule], check_intervals=EVERY_TOKEN)
    assert await stream.read() == "".join(tokens)
    (rule,) = made
    assert rule.deltas == tokens[:2]  # retired after its second check
    assert rule.completed == ["".join(tokens)]  # ... and still judged the whole text


@pytest.mark.parametrize(
    ("text", "streams_on"),
    [("Plain prose, not JSON. " * 3, False), ('{"a": [1, 2], "b": "x"}', True)],
)
def test_the_json_rule_retires_on_output_that_does_not_start_like_json(
    text: str, streams_on: bool
) -> None:
    rule = JsonRule()
    for i in range(0, len(text), 5):
        if rule.streaming:
            assert rule.check_delta(text[i : i + 5], i) is None
    assert rule.streaming is streams_on
    assert not rule.check_complete(text)
    fresh = rule.create()  # a new session's rule streams again
    assert fresh.streaming is True
    # a retired rule given a new text from the start streams again, and still catches errors
    assert rule.check_delta('{"a": }', 0)
    assert rule.streaming is True


async def test_the_json_rule_on_prose_is_called_once_then_judges_the_end() -> None:
    calls: list[tuple[str, int]] = []

    class Counting(JsonRule):
        def check_delta(self, delta: str, offset: int) -> list[l0.Violation] | None:
            calls.append((delta, offset))
            found = super().check_delta(delta, offset)
            return list(found) if found else None

    tokens = ["Hello", " there", ", not", " JSON", " at", " all."] * 10
    stream = l0.run(stream=ScriptedSource([Script(tokens)]), guardrails=[Counting],
                    check_intervals=l0.CheckIntervals(guardrails=4))
    assert await stream.read() == "".join(tokens)
    assert calls == [("Hello there, not JSON", 0)]
    assert stream.state.violations == []


@pytest.mark.parametrize("name", ["json", "markdown", "pattern", "latex", "repetition"])
def test_a_copy_streams_as_configured_whatever_the_original_did_mid_stream(name: str) -> None:
    (rule,) = create_rules([name])
    rule.streaming = False  # (as a rule that retired mid-stream)
    assert rule.create().streaming is True  # type: ignore[attr-defined]
    (quiet,) = create_rules([l0.RuleSpec(name, {"streaming": False})])
    assert quiet.create().streaming is False  # type: ignore[attr-defined]

"""Tests for every hook of the example plugin, driven through ``l0.run``.

A plugin's own tests register the plugin module on a fresh host in code, so they
pass whether or not the distribution is installed, and never see other plugins.
Copy this file with the plugin and keep the pattern.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.plugins import config as l0_config
from l0_core.plugins import host as plugins
from l0_core.plugins.host import PluginHost, PluginRecord
from l0_core.testing import Script, ScriptedSource, instant_backoff
from l0_plugin_example import (
    BannedWordsRule,
    EventCounter,
    ExampleAPIError,
    ExampleClient,
    PatientRetryPolicy,
    WrappedExampleClient,
)
from l0_plugin_example import plugin as example_plugin

RULE = "example-banned-words"


@pytest.fixture(autouse=True)
def example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[PluginRecord]:
    """A host with only L0's built-ins and this plugin; no config files; no L0_* variables."""
    for var in [v for v in __import__("os").environ if v.startswith("L0_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    host = PluginHost(autoload=False)
    record = host.register(example_plugin, name="example")
    plugins.reset_host(host)
    l0_config.set_config(None)
    yield record
    plugins.reset_host()
    l0_config.set_config(None)


def dict_stream(*attempts: Sequence[Any]) -> Any:
    """A stream factory: call ``n`` yields the items of ``attempts[n]`` (the last repeats).
    An exception among the items is raised at that point."""
    calls: list[int] = []

    async def factory() -> AsyncIterator[Any]:
        calls.append(1)
        for item in attempts[min(len(calls), len(attempts)) - 1]:
            if isinstance(item, BaseException):
                raise item
            yield item

    factory.calls = calls  # type: ignore[attr-defined]
    return factory


def configure(tmp_path: Path, text: str) -> None:
    (tmp_path / "l0.toml").write_text(text, encoding="utf-8")
    l0.reload_config()


# -- the plugin as a whole --------------------------------------------------------------------


def test_plugin_implements_every_hook_and_registers_one_of_each(example: PluginRecord) -> None:
    assert example.status == "code"
    assert example.reason is None
    assert example.hooks == [
        "l0_classify_error",
        "l0_register_adapters",
        "l0_register_guardrails",
        "l0_register_observers",
        "l0_register_retry_policies",
        "l0_wrap_client",
    ]
    plugins.get_host().build_all()
    assert example.registered == {
        "adapters": ["example-dict"],
        "guardrails": ["example-banned-words"],
        "retry_policies": ["example-patient"],
        "observers": ["example-counter"],
    }


# -- l0_register_adapters: example-dict ---------------------------------------------------------


async def test_l0_register_adapters_dict_stream_is_detected_and_read() -> None:
    source = dict_stream([{"text": "Hello"}, {"meta": 1}, {"text": ", world"},
                          {"done": True, "finish_reason": "stop", "usage": {"tokens": 3}}])
    stream = l0.run(stream=source)
    assert await stream.read() == "Hello, world"
    assert stream.state.finish_reason == "stop"
    assert stream.state.usage == {"tokens": 3}


async def test_adapter_by_name_with_options() -> None:
    source = dict_stream([{"delta": "a"}, {"delta": "b"}, {"done": True}])
    stream = l0.run(stream=source, adapter="example-dict", adapter_options={"text_key": "delta"})
    assert await stream.read() == "ab"


async def test_stream_without_done_item_is_incomplete_and_retried() -> None:
    source = dict_stream([{"text": "cut "}, {"text": "off"}],
                         [{"text": "whole"}, {"done": True}])
    events = []
    with instant_backoff():
        stream = l0.run(stream=source)
        events = [e async for e in stream]
    assert stream.state.content == "whole"
    assert [e.code for e in stream.errors] == [l0.ErrorCode.INCOMPLETE]
    assert [e.text for e in events if e.is_discard] == ["cut off"]
    assert source.calls == [1, 1]


async def test_stream_without_done_item_fails_incomplete_when_not_retried() -> None:
    stream = l0.run(stream=dict_stream([{"text": "cut"}]), retry=l0.Retry.none())
    with pytest.raises(l0.L0Error) as info:
        await stream.read()
    assert info.value.code is l0.ErrorCode.INCOMPLETE


async def test_in_band_error_item_is_a_server_error() -> None:
    source = dict_stream([{"text": "x"}, {"error": "overloaded"}], [{"text": "y"}, {"done": 1}])
    with instant_backoff():
        stream = l0.run(stream=source)
        assert await stream.read() == "y"
    assert stream.errors[0].code is l0.ErrorCode.SERVER_ERROR
    assert "overloaded" in stream.errors[0].message


async def test_non_dict_item_is_an_invalid_stream() -> None:
    stream = l0.run(stream=dict_stream([{"text": "x"}, ["not", "a", "dict"]]))
    with pytest.raises(l0.L0Error) as info:
        await stream.read()
    assert info.value.code is l0.ErrorCode.INVALID_STREAM


# -- l0_register_guardrails: example-banned-words ----------------------------------------------


async def test_l0_register_guardrails_rule_named_in_config_catches_a_split_word(
    tmp_path: Path,
) -> None:
    configure(tmp_path, f'guardrails = [{{ name = "{RULE}", words = ["forbidden"], '
                        f'severity = "warning" }}]\n')
    source = ScriptedSource([Script(["this is FORB", "idd", "en, really"])])
    stream = l0.run(stream=source)
    assert await stream.read() == "this is FORBidden, really"
    (violation,) = stream.state.violations
    assert (violation.rule, violation.severity, violation.position) == (RULE, "warning", 8)
    assert violation.context["matched"] == "FORBidden"


async def test_error_severity_retries_and_the_discarded_attempt_is_gone() -> None:
    source = ScriptedSource([Script(["a bad ", "word"]), Script(["a good ", "word"])])
    with instant_backoff():
        stream = l0.run(stream=source, guardrails=[l0.Guardrails.by_name(RULE, words=["bad"])])
        assert await stream.read() == "a good word"
    assert stream.state.content == "a good word"
    assert [e.code for e in stream.errors] == [l0.ErrorCode.GUARDRAIL_VIOLATION]
    assert source.calls == 2


async def test_fatal_severity_stops_the_session() -> None:
    source = ScriptedSource([Script(["never say ", "nope"])])
    stream = l0.run(stream=source,
                    guardrails=[l0.Guardrails.by_name(RULE, words=["nope"], severity="fatal")])
    with pytest.raises(l0.GuardrailError) as info:
        await stream.read()
    assert info.value.code is l0.ErrorCode.FATAL_GUARDRAIL_VIOLATION
    assert [v.rule for v in info.value.violations] == [RULE]
    assert source.calls == 1


def test_check_delta_finds_words_across_pieces_once_each() -> None:
    rule = BannedWordsRule(["abc", "bcd", "zz"])
    text = "xxabcdyyzzz"
    found = []
    for i, ch in enumerate(text):  # one character at a time: the worst case for splits
        found.extend(rule.check_delta(ch, i) or [])
    assert sorted((v.position, v.context["word"]) for v in found) == [
        (2, "abc"), (3, "bcd"), (8, "zz"), (9, "zz")]
    assert rule.check_complete(text) is None  # nothing new at the end
    assert len(rule._tail) <= 2  # the rule keeps only len(longest word) - 1 characters


def test_check_complete_alone_finds_everything() -> None:
    rule = BannedWordsRule("secret", case_sensitive=True)
    found = rule.check_complete("a secret, a Secret, a secret") or []
    assert [v.position for v in found] == [2, 22]


@pytest.mark.parametrize(
    ("options", "message"),
    [({}, "at least one"), ({"words": [""]}, "at least one"),
     ({"words": ["x"], "severity": "loud"}, "severity")],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BannedWordsRule(**options)


# -- l0_register_retry_policies: example-patient -----------------------------------------------


async def test_l0_register_retry_policies_patient_policy_outlasts_recommended() -> None:
    attempts = [Script([])] * 4 + [Script(["finally"])]  # four ZERO_OUTPUT attempts
    with instant_backoff():
        with pytest.raises(l0.L0Error):
            await l0.run(stream=ScriptedSource(attempts), retry="recommended").read()
        source = ScriptedSource(attempts)
        assert await l0.run(stream=source, retry="example-patient").read() == "finally"
    assert source.calls == 5


async def test_patient_policy_from_config_with_overrides(tmp_path: Path) -> None:
    configure(tmp_path, '[retry]\npolicy = "example-patient"\nmax_attempts = 1\n')
    cfg = l0_config.defaults_for_run()
    assert cfg.retry.attempts == 1
    assert cfg.retry.strategy == "exponential"
    source = ScriptedSource([Script([]), Script([]), Script(["late"])])
    with instant_backoff(), pytest.raises(l0.L0Error):
        await l0.run(stream=source).read()
    assert source.calls == 2


def test_patient_policy_defaults() -> None:
    retry = PatientRetryPolicy()()
    assert (retry.attempts, retry.network_attempts, retry.max_retries) == (5, 10, 10)
    assert retry.delay_for(l0.L0Error("x", l0.ErrorCode.SERVER_ERROR), 3) == 4.0


# -- l0_register_observers: example-counter ----------------------------------------------------


async def test_l0_register_observers_counter_counts_events_by_type() -> None:
    counter = EventCounter(log_summary=False)
    source = ScriptedSource([Script(["a"], fail_after=0), Script(["a", "b"])])
    with instant_backoff():
        await l0.run(stream=source, observers=[counter]).read()
    assert counter.counts["SESSION_START"] == 1
    assert counter.counts["ATTEMPT_START"] == 1
    assert counter.counts["RETRY_ATTEMPT"] == 1
    assert counter.counts["COMPLETE"] == 1
    assert counter.total == sum(counter.counts.values()) > 5


async def test_counter_named_in_config_is_fresh_per_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configure(tmp_path, 'observers = [{ name = "example-counter", level = "WARNING" }]\n')
    with caplog.at_level(logging.INFO, logger="l0_plugin_example"):
        for _ in range(2):
            await l0.run(stream=ScriptedSource([Script(["x"])])).read()
    summaries = [r.getMessage() for r in caplog.records if "example-counter" in r.getMessage()]
    assert len(summaries) == 2
    assert summaries[0].split(":", 1)[1] == summaries[1].split(":", 1)[1]  # no carry-over


# -- l0_classify_error and l0_wrap_client ------------------------------------------------------


async def test_l0_classify_error_maps_the_sdk_exception() -> None:
    def replies(prompt: str) -> list[Mapping[str, Any] | BaseException]:
        return [{"text": "par"}, ExampleAPIError("slow down", "rate_limited", 0.0)]

    client = ExampleClient(replies)
    stream = l0.run(stream=lambda: client.stream("hi"), retry=l0.Retry.none())
    with pytest.raises(l0.L0Error) as info:
        await stream.read()
    assert info.value.code is l0.ErrorCode.RATE_LIMITED
    assert info.value.retry_after == 0.0
    assert isinstance(info.value.__cause__, ExampleAPIError)


async def test_l0_wrap_client_wraps_the_toy_client() -> None:
    answers: list[list[Mapping[str, Any] | BaseException]] = [
        [{"text": "one "}, ExampleAPIError("busy", "overloaded")],
        [{"text": "one "}, {"text": "two"}, {"done": True}],
    ]
    client = ExampleClient(lambda prompt: answers.pop(0))
    wrapped = l0.wrap(client, guardrails=[])
    assert isinstance(wrapped, WrappedExampleClient)
    with instant_backoff():
        stream = wrapped.stream("count")
        assert await stream.read() == "one two"
    assert stream.errors[0].code is l0.ErrorCode.SERVER_ERROR
    assert client.calls == 2
    assert await l0.wrap(ExampleClient()).stream("echo me").read() == "echo me "
    with pytest.raises(l0.ConfigError):
        l0.wrap(object())

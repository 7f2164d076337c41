"""Wrong arguments fail when they are written, with a ConfigError that names them.

``l0.run``, ``l0.wrap``, ``Retry``, ``Timeout``, ``CheckIntervals`` and the config loader
check their arguments when called: a ``ConfigError`` (also a ``ValueError`` and a
``TypeError``) naming the argument and what it accepts, never a raw pydantic
``ValidationError`` and never a failure that waits for the stream to be read.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import ValidationError

import l0_core as l0
from l0_core.errors import ConfigError, GuardrailError
from l0_core.guardrails.rule import create_rules
from l0_core.plugins import config as l0_config
from l0_core.runtime.arguments import check_options, check_run_arguments
from l0_core.runtime.retry import backoff_delay

pytestmark = pytest.mark.usefixtures("instant")


class Calls:
    """A stream factory that counts its calls: a check made at call time never calls it."""

    def __init__(self, *pieces: str) -> None:
        self.pieces = pieces or ("ok",)
        self.calls = 0

    def __call__(self) -> AsyncIterator[str]:
        self.calls += 1
        return self._tokens()

    async def _tokens(self) -> AsyncIterator[str]:
        for piece in self.pieces:
            yield piece


def assert_config_error(error: BaseException, *fragments: str) -> None:
    assert type(error) is ConfigError
    assert isinstance(error, ValueError) and isinstance(error, TypeError)
    assert not isinstance(error, ValidationError)
    assert error.code is l0.ErrorCode.CONFIG_ERROR
    for fragment in fragments:
        assert fragment in str(error), f"{fragment!r} not in {str(error)!r}"


async def backup() -> AsyncIterator[str]:
    yield "from the backup"


class Adapter:
    name = "mine"

    def detect(self, item: Any) -> bool:
        return False

    def open(self, options: Any = None) -> Any:
        raise AssertionError("never opened")


# -- l0.run ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"stream": 42}, ["stream must be a stream factory", "not int 42"]),
        ({"stream": "Hello"}, ["stream must be", "lambda: client.chat.completions.create("]),
        ({"stream": ["Hello", "world"]}, ["stream must be", "a synchronous iterable"]),
        ({"fallbacks": ["gpt-4o-mini"]},
         ["fallbacks[0] must be", "str 'gpt-4o-mini'",
          'lambda: client.chat.completions.create(model="gpt-4o-mini", ...)']),
        ({"fallbacks": [backup, 7]}, ["fallbacks[1] must be", "int 7"]),
        ({"fallbacks": "gpt-4o-mini"}, ["fallbacks must be a list", "str 'gpt-4o-mini'"]),
        ({"fallbacks": backup}, ["fallbacks must be a list", "fallbacks=[backup]"]),
        ({"fallbacks": {"model": "gpt-4o-mini"}}, ["fallbacks must be a list", "dict"]),
        ({"retry": 3}, ["retry must be an l0.Retry", "l0.Retry(attempts=3)"]),
        ({"retry": {"attempts": 3}}, ["retry must be", "l0.Retry(**options)"]),
        ({"timeout": 5}, ["timeout must be an l0.Timeout or None", "not int 5",
                          "l0.Timeout(total=5)"]),
        ({"timeout": 2.5}, ["timeout must be", "l0.Timeout(total=2.5)"]),
        ({"timeout": {"total": 5}}, ["timeout must be an l0.Timeout or None"]),
        ({"guardrails": 42}, ["guardrails must be a list of rules"]),
        ({"guardrails": iter(["json"])}, ["guardrails must be", "used up by the first attempt"]),
        ({"drift_action": "stop"}, ["drift_action must be 'flag', 'retry' or 'halt'"]),
        ({"check_intervals": 16}, ["check_intervals must be an l0.CheckIntervals or None"]),
        ({"continue_from_last_good_token": "yes"},
         ["continue_from_last_good_token must be True, False or an l0.Continuation"]),
        ({"build_continuation_prompt": "Continue:"},
         ["build_continuation_prompt must be a function or None"]),
        ({"adapter": 42}, ["adapter must be an adapter name or an adapter object"]),
        ({"adapter": Adapter}, ["adapter must be", "adapter=Adapter()"]),
        ({"adapter_options": ["x"]}, ["adapter_options must be a mapping"]),
        ({"context": "request-1"}, ["context must be a mapping"]),
        ({"observers": "logging"}, ["observers must be a list", "observers=['logging']"]),
        ({"observers": 3}, ["observers must be a list"]),
        ({"on_token": "print"}, ["on_token must be a function or None"]),
        ({"on_complete": 1, "on_start": print}, ["on_complete must be a function or None"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_a_wrong_run_argument_fails_at_call_time(
    options: dict[str, Any], fragments: list[str]
) -> None:
    factory = Calls()
    stream = options.pop("stream", factory)
    with pytest.raises(ConfigError) as info:
        l0.run(stream=stream, **options)  # not iterated: the check happens here
    assert_config_error(info.value, *fragments)
    assert factory.calls == 0


async def test_right_run_arguments_pass() -> None:
    async def iterator_source() -> AsyncIterator[str]:
        yield "from an iterator"

    async def make() -> AsyncIterator[str]:
        return iterator_source()

    sources: list[Any] = [Calls("ok"), iterator_source(), make()]  # factory, iterator, awaitable
    for source in sources:
        stream = l0.run(
            stream=source, fallbacks=(backup,), retry="recommended",
            timeout=l0.Timeout(total=5), guardrails="zero_output", drift_action="flag",
            check_intervals=l0.CheckIntervals(guardrails=1),
            continue_from_last_good_token=l0.Continuation(),
            build_continuation_prompt=lambda text: text, adapter="text",
            adapter_options=types.MappingProxyType({}), context={"request": 1},
            observers=("logging",), on_token=print, on_complete=None,
        )
        assert await stream.read() in ("ok", "from an iterator")


def test_a_plain_call_passes_the_check() -> None:
    check_run_arguments(
        stream=Calls(), fallbacks=(), retry=None, timeout=None, guardrails=None,
        drift_action="retry", check_intervals=None, continue_from_last_good_token=False,
        build_continuation_prompt=None, adapter=None, adapter_options=None, context=None,
        observers=None, callbacks={},
    )


# -- guardrails named by a str --------------------------------------------------------------


async def test_guardrails_given_one_name_use_that_rule() -> None:
    stream = l0.run(stream=Calls('{"a":'), guardrails="json", retry=l0.Retry.none())
    with pytest.raises(GuardrailError) as info:
        await stream.read()
    assert info.value.code is l0.ErrorCode.GUARDRAIL_VIOLATION


def test_a_preset_name_expands_to_its_rules() -> None:
    names = [rule.name for rule in create_rules("recommended")]
    assert names == [rule.name for rule in create_rules(["recommended"])]
    assert names == ["json", "markdown", "pattern", "zero_output"]
    assert [rule.name for rule in create_rules("json")] == ["json"]


def test_an_unknown_guardrail_name_lists_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        create_rules("jsn")
    assert "unknown guardrail 'jsn'" in str(info.value)
    assert "json" in str(info.value).split("unknown guardrail 'jsn'")[1]


@pytest.mark.parametrize("value", [42, 3.5, {"json": {}}])
def test_guardrails_that_are_no_list_are_refused(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        create_rules(value)
    assert_config_error(info.value, "guardrails must be a list of rules")


def test_a_list_entry_that_is_no_rule_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        create_rules([42])
    assert_config_error(info.value, "not a guardrail rule: 42")


# -- Retry, Timeout, CheckIntervals ----------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda: l0.Timeout(inter_token=-1),
         ["Timeout: inter_token must be a positive number of seconds or None", "not int -1"]),
        (lambda: l0.Timeout(total="soon"), ["total must be a positive number of seconds"]),
        (lambda: l0.Timeout(initial_token=True), ["initial_token must be", "not bool True"]),
        (lambda: l0.Timeout(totl=5),
         ["totl is unknown", "Timeout accepts initial_token, inter_token, total"]),
        (lambda: l0.Timeout(5), ["Timeout() takes keyword arguments only"]),
        (lambda: l0.CheckIntervals(guardrails=0),
         ["CheckIntervals: guardrails must be a whole number of tokens, 1 or more"]),
        (lambda: l0.Retry(attempts=-1),
         ["Retry: attempts must be a whole number of retries, 0 or more"]),
        (lambda: l0.Retry(max_attempts="many"), ["max_attempts must be a whole number"]),
        (lambda: l0.Retry(fallback_after=-1), ["fallback_after must be a whole number"]),
        (lambda: l0.Retry(strategy="sometimes"),
         ["strategy must be one of 'exponential', 'linear'"]),
        (lambda: l0.Retry(error_type_delays={"RATE_LIMITD": 2.0}),
         ["error_type_delays must be a mapping of error codes", "'RATE_LIMITD' is not a valid"]),
        (lambda: l0.Retry(should_retry=True), ["should_retry must be a function"]),
        (lambda: l0.Retry.recommended(attempts=-1), ["Retry: attempts must be"]),
    ],
)
def test_option_models_raise_config_errors(make: Any, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert_config_error(info.value, *fragments)


# -- Retry.fallback_after: failing over quickly -----------------------------------------------


def test_fallback_after_defaults_to_three_requests_per_model() -> None:
    assert l0.Retry().fallback_after == 2
    recommended = l0.Retry.recommended()
    assert recommended.fallback_after == 2  # 1 request + 2 retries before the fallback
    # the longest backoff before the fallback: fixed-jitter at its maximum
    worst = sum(backoff_delay(recommended.strategy, k, recommended.base_delay,
                              recommended.max_delay, rng=lambda: 1.0)
                for k in range(recommended.fallback_after))
    assert worst == 3.0


@pytest.mark.parametrize(
    ("preset", "fallback_after"),
    [("minimal", 1), ("recommended", 2), ("strict", 2), ("exponential", 3), ("mobile", 3),
     ("edge", 1), ("none", 0)],
)
def test_each_preset_sets_fallback_after(preset: str, fallback_after: int) -> None:
    assert getattr(l0.Retry, preset)().fallback_after == fallback_after
    assert getattr(l0.Retry, preset)(fallback_after=5).fallback_after == 5


# -- the config loader ------------------------------------------------------------------------


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ("[timeout]\ninter_token = -1\n",
         ["key 'timeout.inter_token'", "a positive number of seconds or None"]),
        ("[retry]\nfallback_after = -1\n",
         ["retry policy 'recommended'",
          "key 'retry.fallback_after' must be a whole number of retries"]),
        ('[retry]\npolicy = "strict"\nstrategy = "never"\n',
         ["retry policy 'strict'", "key 'retry.strategy' must be one of"]),
        ('guardrails = [{name = "json", requir = true}]\n',
         ["guardrail 'json' does not take these options", "requir"]),
        ('guardrails = [{name = "recommended", strict = true}]\n',
         ["the guardrail preset 'recommended' takes no options"]),
        ('observers = [{name = "logging", levl = "DEBUG"}]\n',
         ["observer 'logging' does not take these options", "levl"]),
    ],
)
def test_the_config_loader_names_the_wrong_key(
    project: Path, toml: str, fragments: list[str]
) -> None:
    (project / "l0.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        l0_config.load(environ={})
    assert_config_error(info.value, "l0.toml", *fragments)


def test_the_config_loader_checks_environment_values(project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        l0_config.load(environ={"L0_RETRY_ATTEMPTS": "many"})
    assert_config_error(info.value,
                        "L0_RETRY_ATTEMPTS: key 'retry.attempts' must be a whole number")


# -- l0.wrap ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"timeout": 5}, ["timeout must be an l0.Timeout or None", "l0.Timeout(total=5)"]),
        ({"retry": 3}, ["retry must be an l0.Retry", "l0.Retry(attempts=3)"]),
        ({"guardrails": 1}, ["guardrails must be a list of rules"]),
        ({"drift_action": "ignore"}, ["drift_action must be"]),
        ({"observers": "logging"}, ["observers must be a list"]),
        ({"on_token": "print"}, ["on_token must be a function or None"]),
        ({"fallbacks": "gpt-4o-mini"},
         ["fallbacks must be a list", "fallbacks=[{'model': 'gpt-4o-mini'}]"]),
        ({"fallbacks": ["gpt-4o-mini"]}, ["fallbacks[0] must be", "{'model': 'gpt-4o-mini'}"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_wrap_checks_its_options_when_called(
    options: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        l0.wrap(openai.AsyncOpenAI(api_key="test"), **options)
    assert_config_error(info.value, *fragments)


def test_wrap_checks_per_call_options() -> None:
    client = l0.wrap(openai.AsyncOpenAI(api_key="test"))
    with pytest.raises(ConfigError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[], stream=True,
                                       l0={"timeout": 5})
    assert_config_error(info.value, "timeout must be an l0.Timeout")


def test_check_options_lets_none_and_right_values_through() -> None:
    check_options({"timeout": None, "retry": "strict", "guardrails": ["json"],
                   "on_token": print, "keep_raw": True, "config": None})

"""The arguments of ``l0.run`` and ``l0.wrap``, checked when they are called.

A wrong argument fails where it is written, with a
:class:`~l0_core.errors.ConfigError` (a ``ValueError`` and a ``TypeError``) that
names it and says what it accepts, not during iteration with an
``AttributeError`` from inside the runtime. This runs once per session and a
session's fixed cost is a few microseconds, so the checks are identity and type
tests with the common case first: no pydantic, no registry lookups (a name is
looked up, and an unknown one reported with the installed names, where it is
resolved).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from l0_core.errors import ConfigError
from l0_core.runtime.continuation import Continuation
from l0_core.runtime.options import CheckIntervals, Timeout, describe_value
from l0_core.runtime.retry import Retry

__all__ = ["check_options", "check_run_arguments"]

_DRIFT_ACTIONS = ("flag", "retry", "halt")
_FACTORY_EXAMPLE = 'lambda: client.chat.completions.create(model="gpt-4o-mini", ...)'
_SOURCE = "a stream factory (a function returning an async iterator) or an async iterator"


def _fail(argument: str, accepts: str, value: Any, hint: str = "") -> NoReturn:
    raise ConfigError(
        f"{argument} must be {accepts}, not {describe_value(value)}{f'; {hint}' if hint else ''}"
    )


def _is_source(value: Any) -> bool:
    """A factory, an async iterator / iterable, or an awaitable of one (read once)."""
    return callable(value) or any(
        hasattr(value, name) for name in ("__aiter__", "__anext__", "__await__")
    )


def _check_source(argument: str, value: Any) -> None:
    if _is_source(value):
        return
    hint = ""
    if isinstance(value, str):
        hint = f"for another model write a factory, e.g. {_FACTORY_EXAMPLE}"
    elif isinstance(value, Iterable):
        hint = "a synchronous iterable is not a stream: yield its items from an async generator"
    _fail(argument, _SOURCE, value, hint)


def _check_fallbacks(fallbacks: Any) -> None:
    if isinstance(fallbacks, str | Mapping) or not isinstance(fallbacks, Iterable):
        hint = (f"write a list: fallbacks=[{getattr(fallbacks, '__name__', 'backup')}]"
                if _is_source(fallbacks) else
                f"for another model write fallbacks=[{_FACTORY_EXAMPLE}]")
        _fail("fallbacks", f"a list of fallbacks, each {_SOURCE}", fallbacks, hint)
    if isinstance(fallbacks, list | tuple):  # a one-shot iterator is not read twice
        for index, fallback in enumerate(fallbacks):
            if not _is_source(fallback):
                _check_source(f"fallbacks[{index}]", fallback)


def _check_retry(retry: Any) -> None:
    if isinstance(retry, Retry | str):
        return
    hint = ""
    if isinstance(retry, int) and not isinstance(retry, bool):
        hint = f"for {retry} retries write l0.Retry(attempts={retry})"
    elif isinstance(retry, Mapping):
        hint = "write l0.Retry(**options)"
    _fail("retry", "an l0.Retry, a retry policy name (such as 'recommended') or None", retry,
          hint)


def _check_timeout(timeout: Any) -> None:
    if isinstance(timeout, Timeout):
        return
    hint = ""
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        hint = f"for a budget of {timeout:g} s for the whole session write " \
               f"l0.Timeout(total={timeout:g})"
    _fail("timeout", "an l0.Timeout or None", timeout, hint)


def _check_guardrails(guardrails: Any) -> None:
    if isinstance(guardrails, str):
        return  # one rule or preset name
    if isinstance(guardrails, Mapping) or not isinstance(guardrails, Iterable):
        _fail("guardrails", "a list of rules, a rule or preset name, or None", guardrails,
              "for example l0.Guardrails.recommended() or ['json', 'zero_output']")
    if iter(guardrails) is guardrails:
        _fail("guardrails", "a list of rules, a rule or preset name, or None", guardrails,
              "an iterator would be used up by the first attempt; pass a list")


def _check_drift_action(value: Any) -> None:
    if type(value) is not str or value not in _DRIFT_ACTIONS:
        _fail("drift_action", "'flag', 'retry' or 'halt'", value)


def _check_intervals(value: Any) -> None:
    if not isinstance(value, CheckIntervals):
        _fail("check_intervals", "an l0.CheckIntervals or None", value)


def _check_continuation(value: Any) -> None:
    if type(value) is not bool and not isinstance(value, Continuation):
        _fail("continue_from_last_good_token", "True, False or an l0.Continuation", value)


def _check_adapter(adapter: Any) -> None:
    if isinstance(adapter, str) or (
        not isinstance(adapter, type) and callable(getattr(adapter, "open", None))
    ):
        return
    hint = f"pass an instance: adapter={adapter.__name__}()" if isinstance(adapter, type) else ""
    _fail("adapter", "an adapter name or an adapter object (with detect and open)", adapter, hint)


def _check_mapping(argument: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        _fail(argument, "a mapping (such as a dict) or None", value)


def _check_observers(observers: Any) -> None:
    if isinstance(observers, str) or not isinstance(observers, Iterable):
        hint = f"write observers=[{observers!r}]" if isinstance(observers, str) else ""
        _fail("observers", "a list of observer names or objects, or None", observers, hint)


def _check_callable(argument: str, value: Any) -> None:
    if not callable(value):
        _fail(argument, "a function or None", value)


def check_run_arguments(
    *, stream: Any, fallbacks: Any, retry: Any, timeout: Any, guardrails: Any, drift_action: Any,
    check_intervals: Any, continue_from_last_good_token: Any, build_continuation_prompt: Any,
    adapter: Any, adapter_options: Any, context: Any, observers: Any, callbacks: Mapping[str, Any],
    record_timing: Any = "tick",
) -> None:
    """Raise :class:`ConfigError` for the first wrong argument of ``l0.run``.

    ``callbacks`` maps each ``on_*`` keyword given to its value. Each test
    checks the common values inline first, so that a correct call costs a few
    comparisons and two calls (the split keeps each function simple).
    """
    if not callable(stream):
        _check_source("stream", stream)
    if fallbacks:
        if type(fallbacks) is list:
            for index, fallback in enumerate(fallbacks):
                if not callable(fallback):
                    _check_source(f"fallbacks[{index}]", fallback)
        else:
            _check_fallbacks(fallbacks)
    _check_policies(retry, timeout, guardrails, drift_action, check_intervals)
    _check_hooks(continue_from_last_good_token, build_continuation_prompt, adapter,
                 adapter_options, context, observers)
    for name, callback in callbacks.items():
        if callback is not None and not callable(callback):
            _check_callable(name, callback)
    if record_timing != "tick" and record_timing != "token":
        raise ConfigError(f"record_timing must be \"tick\" or \"token\", not {record_timing!r}")


def _check_policies(
    retry: Any, timeout: Any, guardrails: Any, drift_action: Any, check_intervals: Any
) -> None:
    if retry is not None and type(retry) is not Retry:
        _check_retry(retry)
    if timeout is not None and type(timeout) is not Timeout:
        _check_timeout(timeout)
    if guardrails is not None and type(guardrails) is not list:
        _check_guardrails(guardrails)
    if drift_action != "retry":
        _check_drift_action(drift_action)
    if check_intervals is not None and type(check_intervals) is not CheckIntervals:
        _check_intervals(check_intervals)


def _check_hooks(
    continue_from_last_good_token: Any, build_continuation_prompt: Any, adapter: Any,
    adapter_options: Any, context: Any, observers: Any,
) -> None:
    if continue_from_last_good_token is not False and continue_from_last_good_token is not True:
        _check_continuation(continue_from_last_good_token)
    if build_continuation_prompt is not None and not callable(build_continuation_prompt):
        _check_callable("build_continuation_prompt", build_continuation_prompt)
    if adapter is not None:
        _check_adapter(adapter)
    if adapter_options is not None and type(adapter_options) is not dict:
        _check_mapping("adapter_options", adapter_options)
    if context is not None and type(context) is not dict:
        _check_mapping("context", context)
    if observers is not None and type(observers) is not list:
        _check_observers(observers)


# The options ``l0.wrap`` passes on to ``l0.run``, each with its check (applied to a value
# that is not None); an ``on_*`` callback must be callable.
_OPTION_CHECKS: Mapping[str, Callable[[Any], None]] = {
    "retry": _check_retry,
    "timeout": _check_timeout,
    "guardrails": _check_guardrails,
    "drift_action": _check_drift_action,
    "check_intervals": _check_intervals,
    "continue_from_last_good_token": _check_continuation,
    "build_continuation_prompt": lambda value: _check_callable("build_continuation_prompt",
                                                               value),
    "adapter": _check_adapter,
    "adapter_options": lambda value: _check_mapping("adapter_options", value),
    "context": lambda value: _check_mapping("context", value),
    "observers": _check_observers,
}


def check_options(options: Mapping[str, Any]) -> None:
    """Check the ``l0.run`` options in ``options`` (what ``l0.wrap`` and ``l0=`` take).

    ``stream`` and ``fallbacks`` are not among them: a wrapped client makes
    those itself. A ``None`` value means "the default" and always passes.
    """
    for name, value in options.items():
        if value is None:
            continue
        check = _OPTION_CHECKS.get(name)
        if check is not None:
            check(value)
        elif name.startswith("on_"):
            _check_callable(name, value)

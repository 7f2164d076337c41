"""L0: a reliability layer for LLM token streams.

``import l0_core as l0``, then ``l0.run(stream=factory, ...)``. See README.md
and docs/ for the guide.
"""

from __future__ import annotations

from typing import Any

from l0_core.adapters import Adapter, AdapterSession, Finish
from l0_core.config import reload as reload_config
from l0_core.continuation import Continuation, Resume
from l0_core.drift import DriftResult
from l0_core.errors import (
    Classification,
    ConfigError,
    ErrorCategory,
    ErrorCode,
    FailureType,
    GuardrailError,
    L0Error,
    Recovery,
    TimeoutError,
)
from l0_core.events import (
    Complete,
    Data,
    Discard,
    ErrorEvent,
    Event,
    EventType,
    Message,
    ObservabilityEvent,
    ObservabilityEventType,
    Progress,
    Token,
    ToolCall,
)
from l0_core.guardrails import CustomPatternRule, FunctionRule, Rule, RuleSpec, Violation
from l0_core.hookspecs import hookimpl
from l0_core.options import CheckIntervals, Timeout
from l0_core.plugins import register_plugin
from l0_core.retry import Retry, RetryContext
from l0_core.runtime import Stream, run
from l0_core.state import State

__version__ = "0.1.0"

__all__ = [
    "Adapter",
    "AdapterSession",
    "CheckIntervals",
    "Classification",
    "Complete",
    "ConfigError",
    "Continuation",
    "CustomPatternRule",
    "Data",
    "Discard",
    "DriftResult",
    "ErrorCategory",
    "ErrorCode",
    "ErrorEvent",
    "Event",
    "EventType",
    "FailureType",
    "Finish",
    "FunctionRule",
    "GuardrailError",
    "Guardrails",
    "L0Error",
    "Message",
    "ObservabilityEvent",
    "ObservabilityEventType",
    "Progress",
    "Recovery",
    "Resume",
    "Retry",
    "RetryContext",
    "Rule",
    "RuleSpec",
    "State",
    "Stream",
    "Timeout",
    "TimeoutError",
    "Token",
    "ToolCall",
    "Violation",
    "__version__",
    "hookimpl",
    "register_plugin",
    "reload_config",
    "run",
    "wrap",
]


class Guardrails:
    """Guardrail rules and presets by name: ``l0.Guardrails.by_name("json", ...)``."""

    @staticmethod
    def by_name(name: str, **options: Any) -> RuleSpec:
        """A registered rule (built-in or from a plugin) with options."""
        return RuleSpec(name, options)

    @staticmethod
    def custom_pattern(patterns: list[str], **options: Any) -> RuleSpec:
        return RuleSpec("custom_pattern", {"patterns": patterns, **options})

    @staticmethod
    def none() -> list[RuleSpec]:
        return []


def wrap(client: Any, **options: Any) -> Any:
    """Wrap a provider client so its streaming calls return L0 streams.

    The client is recognised by provider plugins (``pip install l0-openai`` for
    ``openai.AsyncOpenAI``). An unknown client is a :class:`ConfigError`.
    """
    from l0_core.plugins import get_host

    wrapped = get_host().wrap_client(client, options)
    if wrapped is None:
        raise ConfigError(
            f"no installed plugin can wrap a {type(client).__module__}."
            f"{type(client).__qualname__}; for OpenAI clients install l0-openai "
            f"(pip install l0-openai)",
            ErrorCode.UNKNOWN_PLUGIN,
        )
    return wrapped

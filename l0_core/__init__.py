"""L0: a reliability layer for LLM token streams.

``import l0_core as l0``, then ``l0.run(stream=factory, ...)``. See README.md
and docs/ for the guide.

``import l0_core`` imports nothing else: each public name is imported the first
time it is read (PEP 562), so a program that never configures anything builds
no pydantic model and scans no entry point. To add a public name, add it to
``__all__``, to ``_EXPORTS`` and to the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib

# Not ``from typing import TYPE_CHECKING``: importing typing would be most of the cost of
# ``import l0_core``. Type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time _EXPORTS resolves these
    from l0_core.errors import (
        AbortedError,
        Classification,
        ConfigError,
        ContentError,
        ErrorCategory,
        ErrorCode,
        FailureType,
        FatalError,
        GuardrailError,
        L0Error,
        NetworkError,
        ProviderError,
        RateLimitError,
        RecordingError,
        Recovery,
        TimeoutException,
    )
    from l0_core.events import (
        Audio,
        Complete,
        Data,
        Discard,
        ErrorEvent,
        Event,
        EventType,
        Image,
        Media,
        Message,
        ObservabilityEvent,
        ObservabilityEventType,
        Progress,
        Token,
        ToolCall,
    )
    from l0_core.guardrails.catalog import Guardrails
    from l0_core.guardrails.drift import DriftResult
    from l0_core.guardrails.rule import CustomPatternRule, FunctionRule, Rule, RuleSpec, Violation
    from l0_core.multi._child import TaskResult
    from l0_core.multi.consensus import ConsensusError, consensus
    from l0_core.multi.parallel import batched, parallel, sequential
    from l0_core.multi.pipeline import Branch, Step, create_pipeline, pipe
    from l0_core.multi.pool import create_pool
    from l0_core.multi.race import hedge, race
    from l0_core.plugins.config import reload as reload_config
    from l0_core.plugins.hookspecs import hookimpl
    from l0_core.plugins.host import register_plugin, wrap
    from l0_core.record.replay import replay
    from l0_core.record.store import open_store
    from l0_core.runtime.adapters import Adapter, AdapterSession, Finish
    from l0_core.runtime.continuation import Continuation, Resume
    from l0_core.runtime.options import CheckIntervals, Timeout
    from l0_core.runtime.retry import Retry, RetryContext
    from l0_core.runtime.state import State
    from l0_core.runtime.stream import Stream, run
    from l0_core.scale.attach import attach
    from l0_core.scale.cooldown import Cooldowns
    from l0_core.scale.resume import resume
    from l0_core.structured_output.api import (
        StructuredResult,
        StructuredStream,
        structured,
        structured_array,
        structured_object,
        structured_stream,
    )
    from l0_core.structured_output.errors import JSONRepairError, StructuredError
    from l0_core.structured_output.repair import repair_json
    from l0_core.text import formatting
    from l0_core.text.window import Window

__version__ = "0.1.0"

__all__ = [
    "AbortedError",
    "Adapter",
    "AdapterSession",
    "Audio",
    "Branch",
    "CheckIntervals",
    "Classification",
    "Complete",
    "ConfigError",
    "ConsensusError",
    "ContentError",
    "Continuation",
    "Cooldowns",
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
    "FatalError",
    "Finish",
    "FunctionRule",
    "GuardrailError",
    "Guardrails",
    "Image",
    "JSONRepairError",
    "L0Error",
    "Media",
    "Message",
    "NetworkError",
    "ObservabilityEvent",
    "ObservabilityEventType",
    "Progress",
    "ProviderError",
    "RateLimitError",
    "RecordingError",
    "Recovery",
    "Resume",
    "Retry",
    "RetryContext",
    "Rule",
    "RuleSpec",
    "State",
    "Step",
    "Stream",
    "StructuredError",
    "StructuredResult",
    "StructuredStream",
    "TaskResult",
    "Timeout",
    "TimeoutException",
    "Token",
    "ToolCall",
    "Violation",
    "Window",
    "__version__",
    "attach",
    "batched",
    "consensus",
    "create_pipeline",
    "create_pool",
    "formatting",
    "hedge",
    "hookimpl",
    "open_store",
    "parallel",
    "pipe",
    "race",
    "register_plugin",
    "reload_config",
    "repair_json",
    "replay",
    "resume",
    "run",
    "sequential",
    "structured",
    "structured_array",
    "structured_object",
    "structured_stream",
    "wrap",
]

_ERRORS = "l0_core.errors"
_EVENTS = "l0_core.events"
_RULE = "l0_core.guardrails.rule"
_STRUCTURED = "l0_core.structured_output.api"

_EXPORTS: dict[str, str] = {
    # public name -> the module that defines it, or "module:attribute" when it is renamed
    "Classification": _ERRORS,
    "ConfigError": _ERRORS,
    "ErrorCategory": _ERRORS,
    "ErrorCode": _ERRORS,
    "FailureType": _ERRORS,
    "GuardrailError": _ERRORS,
    "L0Error": _ERRORS,
    "Recovery": _ERRORS,
    "AbortedError": _ERRORS,
    "ContentError": _ERRORS,
    "FatalError": _ERRORS,
    "NetworkError": _ERRORS,
    "ProviderError": _ERRORS,
    "RateLimitError": _ERRORS,
    "RecordingError": _ERRORS,
    "TimeoutException": _ERRORS,
    "Audio": _EVENTS,
    "Complete": _EVENTS,
    "Data": _EVENTS,
    "Discard": _EVENTS,
    "ErrorEvent": _EVENTS,
    "Event": _EVENTS,
    "EventType": _EVENTS,
    "Image": _EVENTS,
    "Media": _EVENTS,
    "Message": _EVENTS,
    "ObservabilityEvent": _EVENTS,
    "ObservabilityEventType": _EVENTS,
    "Progress": _EVENTS,
    "Token": _EVENTS,
    "ToolCall": _EVENTS,
    "Guardrails": "l0_core.guardrails.catalog",
    "DriftResult": "l0_core.guardrails.drift",
    "CustomPatternRule": _RULE,
    "FunctionRule": _RULE,
    "Rule": _RULE,
    "RuleSpec": _RULE,
    "Violation": _RULE,
    "reload_config": "l0_core.plugins.config:reload",
    "hookimpl": "l0_core.plugins.hookspecs",
    "register_plugin": "l0_core.plugins.host",
    "wrap": "l0_core.plugins.host",
    "open_store": "l0_core.record.store",
    "replay": "l0_core.record.replay",
    "attach": "l0_core.scale.attach",
    "Cooldowns": "l0_core.scale.cooldown",
    "resume": "l0_core.scale.resume",
    "Adapter": "l0_core.runtime.adapters",
    "AdapterSession": "l0_core.runtime.adapters",
    "Finish": "l0_core.runtime.adapters",
    "Continuation": "l0_core.runtime.continuation",
    "Resume": "l0_core.runtime.continuation",
    "CheckIntervals": "l0_core.runtime.options",
    "Timeout": "l0_core.runtime.options",
    "Retry": "l0_core.runtime.retry",
    "RetryContext": "l0_core.runtime.retry",
    "Stream": "l0_core.runtime.stream",
    "run": "l0_core.runtime.stream",
    "State": "l0_core.runtime.state",
    "Window": "l0_core.text.window",
    "formatting": "l0_core.text",
    "StructuredResult": _STRUCTURED,
    "StructuredStream": _STRUCTURED,
    "structured": _STRUCTURED,
    "structured_array": _STRUCTURED,
    "structured_object": _STRUCTURED,
    "structured_stream": _STRUCTURED,
    "JSONRepairError": "l0_core.structured_output.errors",
    "StructuredError": "l0_core.structured_output.errors",
    "repair_json": "l0_core.structured_output.repair",
    "Branch": "l0_core.multi.pipeline",
    "ConsensusError": "l0_core.multi.consensus",
    "Step": "l0_core.multi.pipeline",
    "TaskResult": "l0_core.multi._child",
    "batched": "l0_core.multi.parallel",
    "consensus": "l0_core.multi.consensus",
    "create_pipeline": "l0_core.multi.pipeline",
    "create_pool": "l0_core.multi.pool",
    "hedge": "l0_core.multi.race",
    "parallel": "l0_core.multi.parallel",
    "pipe": "l0_core.multi.pipeline",
    "race": "l0_core.multi.race",
    "sequential": "l0_core.multi.parallel",
}


def _resolve(name: str) -> object:
    """Import the public ``name`` from its module, and keep it as a plain module attribute
    so that every later read is an ordinary lookup."""
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value: object = getattr(importlib.import_module(module_name), attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if not TYPE_CHECKING:
    # Hidden from type checkers: they see the real imports above, and a module __getattr__
    # would make them accept any misspelt ``l0.<name>``.
    __getattr__ = _resolve

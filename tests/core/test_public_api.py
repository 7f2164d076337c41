"""The public surface is small and deliberate: changing it must be a conscious edit here."""

from __future__ import annotations

import l0_core

EXPECTED = {
    "Adapter", "AdapterSession", "CheckIntervals", "Classification", "Complete", "ConfigError",
    "Continuation", "CustomPatternRule", "Data", "Discard", "DriftResult", "ErrorCategory",
    "ErrorCode", "ErrorEvent", "Event", "EventType", "FailureType", "Finish", "FunctionRule",
    "GuardrailError", "Guardrails", "L0Error", "Message", "ObservabilityEvent",
    "ObservabilityEventType", "Progress", "Recovery", "Resume", "Retry", "RetryContext", "Rule",
    "RuleSpec", "State", "Stream", "Timeout", "TimeoutException", "Token", "ToolCall", "Violation",
    "AbortedError", "ContentError", "FatalError", "NetworkError", "ProviderError", "RateLimitError",
    "__version__", "hookimpl", "register_plugin", "reload_config", "run", "wrap",
    "Window", "formatting", "Audio", "Image", "Media",
    # structured output (l0_core/structured_output)
    "JSONRepairError", "StructuredError", "StructuredResult", "StructuredStream", "repair_json",
    "structured", "structured_array", "structured_object", "structured_stream",
    # many streams at once (l0_core.multi)
    "Branch", "ConsensusError", "Step", "TaskResult", "batched", "consensus", "create_pipeline",
    "create_pool", "hedge", "parallel", "pipe", "race", "sequential",
    "RecordingError", "open_store", "replay",
    "Cooldowns", "attach", "resume",
}


def test_all_is_pinned() -> None:
    assert set(l0_core.__all__) == EXPECTED
    assert len(l0_core.__all__) == len(set(l0_core.__all__))


def test_every_name_exists() -> None:
    for name in l0_core.__all__:
        assert hasattr(l0_core, name), name

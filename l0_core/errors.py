"""Typed errors and the failure taxonomy.

Every failure L0 reports is an :class:`L0Error` with an :class:`ErrorCode`.
Each code has one category and one default recovery decision::

    Exception
     └── L0Error                    code, category, recovery, status, retry_after
          ├── TimeoutError           INITIAL_/INTER_TOKEN_TIMEOUT, TOTAL_TIMEOUT
          ├── GuardrailError         (FATAL_)GUARDRAIL_VIOLATION, DRIFT_DETECTED
          └── ConfigError            CONFIG_ERROR, UNKNOWN_PLUGIN (bad config, unknown names)

Foreign exceptions are mapped at one boundary, :func:`classify`: provider
plugins first (the ``l0_classify_error`` hook), then generic rules by type and
attributes (asyncio timeouts, ``OSError``, ``status_code`` and headers). L0
never guesses from message text.
"""

from __future__ import annotations

import builtins
import email.utils
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Classification",
    "ConfigError",
    "ErrorCategory",
    "ErrorCode",
    "FailureType",
    "GuardrailError",
    "L0Error",
    "Recovery",
    "TimeoutError",
    "classify",
    "parse_retry_after",
]


class ErrorCategory(enum.StrEnum):
    """The canonical error categories."""

    NETWORK = "network"
    TRANSIENT = "transient"
    CONTENT = "content"
    PROVIDER = "provider"
    INTERNAL = "internal"


class Recovery(enum.StrEnum):
    """What the runtime does about a failure (the canonical recovery strategies)."""

    RETRY = "retry"
    FALLBACK = "fallback"
    CONTINUE = "continue"
    HALT = "halt"


class FailureType(enum.StrEnum):
    """The canonical failure types reported on ERROR events."""

    NETWORK = "network"
    MODEL = "model"
    TOOL = "tool"
    TIMEOUT = "timeout"
    ABORT = "abort"
    ZERO_OUTPUT = "zero_output"
    UNKNOWN = "unknown"


class ErrorCode(enum.StrEnum):
    """Every error code L0 raises. The first twelve are the canonical ones."""

    STREAM_ABORTED = "STREAM_ABORTED"
    INITIAL_TOKEN_TIMEOUT = "INITIAL_TOKEN_TIMEOUT"
    INTER_TOKEN_TIMEOUT = "INTER_TOKEN_TIMEOUT"
    ZERO_OUTPUT = "ZERO_OUTPUT"
    GUARDRAIL_VIOLATION = "GUARDRAIL_VIOLATION"
    FATAL_GUARDRAIL_VIOLATION = "FATAL_GUARDRAIL_VIOLATION"
    INVALID_STREAM = "INVALID_STREAM"
    ALL_STREAMS_EXHAUSTED = "ALL_STREAMS_EXHAUSTED"
    NETWORK_ERROR = "NETWORK_ERROR"
    DRIFT_DETECTED = "DRIFT_DETECTED"
    ADAPTER_NOT_FOUND = "ADAPTER_NOT_FOUND"
    FEATURE_NOT_ENABLED = "FEATURE_NOT_ENABLED"
    # L0 additions: a finer taxonomy, each with its own recovery.
    TOTAL_TIMEOUT = "TOTAL_TIMEOUT"
    TIMEOUT = "TIMEOUT"
    RATE_LIMITED = "RATE_LIMITED"
    SERVER_ERROR = "SERVER_ERROR"
    INCOMPLETE = "INCOMPLETE"
    CONTENT_POLICY = "CONTENT_POLICY"
    CONTEXT_LENGTH_EXCEEDED = "CONTEXT_LENGTH_EXCEEDED"
    AUTH_ERROR = "AUTH_ERROR"
    BAD_REQUEST = "BAD_REQUEST"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CONFIG_ERROR = "CONFIG_ERROR"
    UNKNOWN_PLUGIN = "UNKNOWN_PLUGIN"


@dataclass(frozen=True, slots=True)
class _Kind:
    category: ErrorCategory
    recovery: Recovery
    network_budget: bool  # counts against Retry.network_attempts instead of Retry.attempts
    failure: FailureType


_BuiltinTimeout = builtins.TimeoutError  # asyncio.TimeoutError is this class since 3.11

_N, _T, _C, _P, _I = (
    ErrorCategory.NETWORK,
    ErrorCategory.TRANSIENT,
    ErrorCategory.CONTENT,
    ErrorCategory.PROVIDER,
    ErrorCategory.INTERNAL,
)
_RETRY, _FALLBACK, _HALT = Recovery.RETRY, Recovery.FALLBACK, Recovery.HALT
_F = FailureType

KINDS: Mapping[ErrorCode, _Kind] = {
    ErrorCode.NETWORK_ERROR: _Kind(_N, _RETRY, True, _F.NETWORK),
    ErrorCode.INITIAL_TOKEN_TIMEOUT: _Kind(_T, _RETRY, True, _F.TIMEOUT),
    ErrorCode.INTER_TOKEN_TIMEOUT: _Kind(_T, _RETRY, True, _F.TIMEOUT),
    ErrorCode.TIMEOUT: _Kind(_T, _RETRY, True, _F.TIMEOUT),
    ErrorCode.RATE_LIMITED: _Kind(_T, _RETRY, True, _F.NETWORK),
    ErrorCode.SERVER_ERROR: _Kind(_T, _RETRY, True, _F.NETWORK),
    ErrorCode.TOTAL_TIMEOUT: _Kind(_T, _HALT, False, _F.TIMEOUT),
    ErrorCode.ZERO_OUTPUT: _Kind(_C, _RETRY, False, _F.ZERO_OUTPUT),
    ErrorCode.INCOMPLETE: _Kind(_C, _RETRY, False, _F.MODEL),
    ErrorCode.GUARDRAIL_VIOLATION: _Kind(_C, _RETRY, False, _F.MODEL),
    ErrorCode.FATAL_GUARDRAIL_VIOLATION: _Kind(_C, _HALT, False, _F.MODEL),
    ErrorCode.DRIFT_DETECTED: _Kind(_C, _RETRY, False, _F.MODEL),
    ErrorCode.UNKNOWN_ERROR: _Kind(_P, _RETRY, False, _F.UNKNOWN),
    ErrorCode.CONTENT_POLICY: _Kind(_P, _FALLBACK, False, _F.MODEL),
    ErrorCode.CONTEXT_LENGTH_EXCEEDED: _Kind(_P, _FALLBACK, False, _F.MODEL),
    ErrorCode.BAD_REQUEST: _Kind(_P, _FALLBACK, False, _F.MODEL),
    ErrorCode.AUTH_ERROR: _Kind(_P, _HALT, False, _F.MODEL),
    ErrorCode.STREAM_ABORTED: _Kind(_P, _HALT, False, _F.ABORT),
    ErrorCode.ALL_STREAMS_EXHAUSTED: _Kind(_P, _HALT, False, _F.UNKNOWN),
    ErrorCode.INVALID_STREAM: _Kind(_I, _HALT, False, _F.UNKNOWN),
    ErrorCode.ADAPTER_NOT_FOUND: _Kind(_I, _HALT, False, _F.UNKNOWN),
    ErrorCode.FEATURE_NOT_ENABLED: _Kind(_I, _HALT, False, _F.UNKNOWN),
    ErrorCode.INTERNAL_ERROR: _Kind(_I, _HALT, False, _F.UNKNOWN),
    ErrorCode.CONFIG_ERROR: _Kind(_I, _HALT, False, _F.UNKNOWN),
    ErrorCode.UNKNOWN_PLUGIN: _Kind(_I, _HALT, False, _F.UNKNOWN),
}


class L0Error(Exception):
    """An error L0 raises or reports, with a code, a category and a recovery decision.

    ``status`` is the HTTP status when the error came from an HTTP response;
    ``retry_after`` the delay in seconds the provider asked for. The remaining
    attributes describe the session when the error happened.
    """

    name = "L0Error"

    def __init__(
        self,
        message: str,
        code: ErrorCode = ErrorCode.INTERNAL_ERROR,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        checkpoint: str | None = None,
        token_count: int = 0,
        content_length: int = 0,
        model_retry_count: int = 0,
        network_retry_count: int = 0,
        fallback_index: int = 0,
        metadata: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = ErrorCode(code)
        self.status = status
        self.retry_after = retry_after
        self.checkpoint = checkpoint
        self.token_count = token_count
        self.content_length = content_length
        self.model_retry_count = model_retry_count
        self.network_retry_count = network_retry_count
        self.fallback_index = fallback_index
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.context: Mapping[str, Any] | None = context
        self.timestamp = time.time() * 1000.0

    @property
    def category(self) -> ErrorCategory:
        return KINDS[self.code].category

    @property
    def recovery(self) -> Recovery:
        """The default recovery for this error's code."""
        return KINDS[self.code].recovery

    @property
    def failure_type(self) -> FailureType:
        return KINDS[self.code].failure

    @property
    def has_checkpoint(self) -> bool:
        return bool(self.checkpoint)

    def to_json(self) -> dict[str, Any]:
        """The canonical serialisable shape (camelCase keys)."""
        return {
            "name": self.name,
            "code": self.code.value,
            "category": self.category.value,
            "message": self.message,
            "timestamp": self.timestamp,
            "hasCheckpoint": self.has_checkpoint,
            "checkpoint": self.checkpoint,
            "tokenCount": self.token_count,
            "modelRetryCount": self.model_retry_count,
            "networkRetryCount": self.network_retry_count,
            "fallbackIndex": self.fallback_index,
            "metadata": self.metadata,
            "context": dict(self.context) if self.context is not None else None,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value}: {self.message!r})"


class TimeoutError(L0Error):
    """A timer fired: time to first token, inter-token idle, or the total budget."""

    name = "L0TimeoutError"

    def __init__(self, message: str, code: ErrorCode, *, timeout: float, **kw: Any) -> None:
        super().__init__(message, code, **kw)
        self.timeout = timeout


class GuardrailError(L0Error):
    """A guardrail rule or the drift detector rejected the output."""

    name = "L0GuardrailError"

    def __init__(self, message: str, code: ErrorCode, *, violations: Any = (), **kw: Any):
        super().__init__(message, code, **kw)
        self.violations = tuple(violations)


class ConfigError(L0Error, ValueError):
    """Bad configuration: an unknown plugin name, a malformed file, a wrong type."""

    name = "L0ConfigError"

    def __init__(self, message: str, code: ErrorCode = ErrorCode.CONFIG_ERROR, **kw: Any):
        super().__init__(message, code, **kw)


@dataclass(frozen=True, slots=True)
class Classification:
    """What a provider plugin says about a foreign exception.

    :param code: the L0 error code.
    :param status: the HTTP status, when there was one.
    :param retry_after: seconds the provider asked to wait (Retry-After), if any.
    :param message: a better message than ``str(error)``, if the plugin has one.
    """

    code: ErrorCode
    status: int | None = None
    retry_after: float | None = None
    message: str | None = None


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def status_to_code(status: int) -> ErrorCode:
    """The L0 code for an HTTP status."""
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status in (401, 403):
        return ErrorCode.AUTH_ERROR
    if status == 408:
        return ErrorCode.TIMEOUT
    if status == 413:
        return ErrorCode.CONTEXT_LENGTH_EXCEEDED
    if status >= 500:
        return ErrorCode.SERVER_ERROR
    if 400 <= status < 500:
        return ErrorCode.BAD_REQUEST
    return ErrorCode.UNKNOWN_ERROR


def _generic(error: BaseException) -> Classification:
    if isinstance(error, _BuiltinTimeout):
        return Classification(ErrorCode.TIMEOUT)
    if isinstance(error, (ConnectionError, EOFError)) or (
        isinstance(error, OSError) and not isinstance(error, FileNotFoundError | PermissionError)
    ):
        return Classification(ErrorCode.NETWORK_ERROR)
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(error, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        headers = getattr(error, "headers", None)
        if headers is None:
            response = getattr(error, "response", None)
            headers = getattr(response, "headers", None)
        return Classification(status_to_code(status), status, parse_retry_after(headers))
    return Classification(ErrorCode.UNKNOWN_ERROR)


def classify(error: BaseException, plugin_hook: Any = None) -> L0Error:
    """Turn any exception into an :class:`L0Error` (an L0Error is returned as it is).

    ``plugin_hook`` is the pluggy ``l0_classify_error`` hook caller; when given,
    provider plugins are asked first.
    """
    if isinstance(error, L0Error):
        return error
    found: Classification | None = None
    if plugin_hook is not None:
        try:
            found = plugin_hook(error=error)
        except Exception as exc:  # a broken plugin must not hide the original error
            found = None
            _log_plugin_failure(exc)
    if found is None:
        found = _generic(error)
    message = found.message or f"{type(error).__name__}: {error}".rstrip(": ")
    wrapped = L0Error(message, found.code, status=found.status, retry_after=found.retry_after)
    wrapped.__cause__ = error
    return wrapped


def _log_plugin_failure(exc: BaseException) -> None:
    import logging

    logging.getLogger("l0").warning("an l0_classify_error hook raised %r; ignored", exc)

"""Typed errors and the failure taxonomy.

Every failure L0 reports is an :class:`L0Error` with an :class:`ErrorCode`. Each
code has one category and one default recovery decision (:data:`KINDS`), and
belongs to one class of this tree, so that you can ``except`` a family of
failures the way you would with httpx::

    Exception
     └── L0Error                  code, category, recovery, status, retry_after
          ├── NetworkError        NETWORK_ERROR
          ├── TimeoutException    INITIAL_TOKEN_TIMEOUT, INTER_TOKEN_TIMEOUT,
          │                       TOTAL_TIMEOUT, TIMEOUT             (.timeout)
          ├── RateLimitError      RATE_LIMITED
          ├── ProviderError       SERVER_ERROR, UNKNOWN_ERROR, CONTENT_POLICY,
          │                       CONTEXT_LENGTH_EXCEEDED, BAD_REQUEST,
          │                       ALL_STREAMS_EXHAUSTED
          ├── ContentError        ZERO_OUTPUT, INCOMPLETE, NO_CONSENSUS
          │    └── GuardrailError GUARDRAIL_VIOLATION, FATAL_GUARDRAIL_VIOLATION,
          │                       DRIFT_DETECTED                     (.violations)
          ├── FatalError          AUTH_ERROR, INVALID_STREAM, ADAPTER_NOT_FOUND,
          │    │                  FEATURE_NOT_ENABLED, INTERNAL_ERROR, POOL_CLOSED
          │    ├── ConfigError    CONFIG_ERROR, UNKNOWN_PLUGIN (also a ValueError
          │    │                  and a TypeError: a wrong argument or config value)
          │    └── RecordingError RECORDING_ERROR (a store or a recording is unusable)
          └── AbortedError        STREAM_ABORTED

The code decides the class: ``L0Error(message, ErrorCode.RATE_LIMITED)`` makes a
:class:`RateLimitError`, so every place that raises (the runtime, adapters,
provider plugins, :func:`classify`) produces the precise class without naming
it. A family asked for one of its members' codes makes the member
(``ContentError(message, ErrorCode.DRIFT_DETECTED)`` is a :class:`GuardrailError`);
a class asked for a code outside its family is a programming error and raises
``ValueError``. Left out, the code is the class's ``default_code``. The class
says what happened; ``error.recovery`` says what L0 does about it (a
``TOTAL_TIMEOUT`` is a :class:`TimeoutException` that halts, an ``AUTH_ERROR`` is
a :class:`FatalError`). ``error.name`` and :meth:`L0Error.to_json` stay the
canonical ``"L0Error"`` shape whatever the class.

Foreign exceptions are mapped at one boundary, :func:`classify`: provider
plugins first (the ``l0_classify_error`` hook), then generic rules by type and
attributes (asyncio timeouts, an HTTP status on the exception or on its
``response`` as httpx's ``HTTPStatusError`` has it, then ``OSError``). L0 never
guesses from message text.
"""

from __future__ import annotations

import builtins
import email.utils
import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, cast

__all__ = [
    "AbortedError",
    "Classification",
    "ConfigError",
    "ContentError",
    "ErrorCategory",
    "ErrorCode",
    "FailureType",
    "FatalError",
    "GuardrailError",
    "L0Error",
    "NetworkError",
    "ProviderError",
    "RateLimitError",
    "RecordingError",
    "Recovery",
    "TimeoutException",
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
    # l0_core.multi: consensus not reached under resolve_conflicts="fail"; a pool shut down
    NO_CONSENSUS = "NO_CONSENSUS"
    POOL_CLOSED = "POOL_CLOSED"
    RECORDING_ERROR = "RECORDING_ERROR"


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
    ErrorCode.NO_CONSENSUS: _Kind(_C, _HALT, False, _F.MODEL),
    ErrorCode.POOL_CLOSED: _Kind(_I, _HALT, False, _F.UNKNOWN),
    ErrorCode.RECORDING_ERROR: _Kind(_I, _HALT, False, _F.UNKNOWN),
}


class L0Error(Exception):
    """An error L0 raises or reports, with a code, a category and a recovery decision.

    Calling ``L0Error(message, code)`` returns an instance of the class of the
    tree that ``code`` belongs to (see the module documentation). ``status`` is
    the HTTP status when the error came from an HTTP response; ``retry_after``
    the delay in seconds the provider asked for. The remaining attributes
    describe the session when the error happened.
    """

    name = "L0Error"  # the canonical name, the same for every class of the tree
    #: the code of ``L0Error(message)`` and of a subclass called without one
    default_code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR

    def __new__(
        cls, message: str = "", code: ErrorCode | str | None = None, *args: Any, **kwargs: Any
    ) -> Self:
        chosen = cls.default_code if code is None else ErrorCode(code)
        instance = Exception.__new__(_class_for(cls, chosen))
        return cast(Self, instance)

    def __init__(
        self,
        message: str,
        code: ErrorCode | str | None = None,
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
        self.code = type(self).default_code if code is None else ErrorCode(code)
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


class NetworkError(L0Error):
    """The connection failed: reset, refused, cut mid-stream."""

    default_code = ErrorCode.NETWORK_ERROR


class TimeoutException(L0Error):
    """A timer fired (first token, inter-token idle, total budget) or the provider timed out.

    ``timeout`` is the limit in seconds that was exceeded, when L0 knows it.
    Not named ``TimeoutError``, so that it never shadows the builtin.
    """

    default_code = ErrorCode.TIMEOUT

    def __init__(
        self,
        message: str,
        code: ErrorCode | str | None = None,
        *,
        timeout: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, code, **kw)
        self.timeout = timeout


class RateLimitError(L0Error):
    """The provider rate-limited the request (HTTP 429); ``retry_after`` is honoured."""

    default_code = ErrorCode.RATE_LIMITED


class ProviderError(L0Error):
    """The provider failed or refused the request: a 5xx, a bad request, a content policy."""

    default_code = ErrorCode.UNKNOWN_ERROR


class ContentError(L0Error):
    """The output itself is wrong: empty, or cut off without its terminal marker."""

    default_code = ErrorCode.INCOMPLETE


class GuardrailError(ContentError):
    """A guardrail rule or the drift detector rejected the output (``violations``)."""

    default_code = ErrorCode.GUARDRAIL_VIOLATION

    def __init__(
        self,
        message: str,
        code: ErrorCode | str | None = None,
        *,
        violations: Iterable[Any] = (),
        **kw: Any,
    ) -> None:
        super().__init__(message, code, **kw)
        self.violations = tuple(violations)


class FatalError(L0Error):
    """Retrying cannot help: bad credentials, a misused API, an internal error."""

    default_code = ErrorCode.INTERNAL_ERROR


class ConfigError(FatalError, ValueError, TypeError):
    """A wrong argument or configuration value, or an unknown plugin name.

    Also a ``ValueError`` and a ``TypeError``, what Python code raises for a bad
    argument, so either ``except`` catches it.
    """

    default_code = ErrorCode.CONFIG_ERROR


class RecordingError(FatalError):
    """A store or a recorded session cannot be used: an unknown session, a file that is
    not an L0 store or has another schema version, a corrupt or oversized record."""

    default_code = ErrorCode.RECORDING_ERROR


class AbortedError(L0Error):
    """The stream was aborted (``stream.abort()``)."""

    default_code = ErrorCode.STREAM_ABORTED


#: the family of every code: the class ``L0Error(message, code)`` makes
CLASS_FOR_CODE: Mapping[ErrorCode, type[L0Error]] = {
    ErrorCode.NETWORK_ERROR: NetworkError,
    ErrorCode.INITIAL_TOKEN_TIMEOUT: TimeoutException,
    ErrorCode.INTER_TOKEN_TIMEOUT: TimeoutException,
    ErrorCode.TOTAL_TIMEOUT: TimeoutException,
    ErrorCode.TIMEOUT: TimeoutException,
    ErrorCode.RATE_LIMITED: RateLimitError,
    ErrorCode.SERVER_ERROR: ProviderError,
    ErrorCode.UNKNOWN_ERROR: ProviderError,
    ErrorCode.CONTENT_POLICY: ProviderError,
    ErrorCode.CONTEXT_LENGTH_EXCEEDED: ProviderError,
    ErrorCode.BAD_REQUEST: ProviderError,
    ErrorCode.ALL_STREAMS_EXHAUSTED: ProviderError,
    ErrorCode.ZERO_OUTPUT: ContentError,
    ErrorCode.INCOMPLETE: ContentError,
    ErrorCode.GUARDRAIL_VIOLATION: GuardrailError,
    ErrorCode.FATAL_GUARDRAIL_VIOLATION: GuardrailError,
    ErrorCode.DRIFT_DETECTED: GuardrailError,
    ErrorCode.AUTH_ERROR: FatalError,
    ErrorCode.INVALID_STREAM: FatalError,
    ErrorCode.ADAPTER_NOT_FOUND: FatalError,
    ErrorCode.FEATURE_NOT_ENABLED: FatalError,
    ErrorCode.INTERNAL_ERROR: FatalError,
    ErrorCode.CONFIG_ERROR: ConfigError,
    ErrorCode.UNKNOWN_PLUGIN: ConfigError,
    ErrorCode.NO_CONSENSUS: ContentError,
    ErrorCode.POOL_CLOSED: FatalError,
    ErrorCode.RECORDING_ERROR: RecordingError,
    ErrorCode.STREAM_ABORTED: AbortedError,
}
_TREE = frozenset(CLASS_FOR_CODE.values()) | {L0Error}


def _class_for(cls: type[L0Error], code: ErrorCode) -> type[L0Error]:
    """The class an instance of ``cls`` with ``code`` gets (see the module documentation)."""
    home = CLASS_FOR_CODE[code]
    family = next(k for k in cls.__mro__ if k in _TREE)  # cls, or what a user's class refines
    if family is home:
        return cls
    if cls is family and issubclass(home, family):  # L0Error, or a family: its precise member
        return home
    if family is L0Error:
        return cls  # a user's own direct subclass of L0Error takes any code
    members = sorted(c.value for c, k in CLASS_FOR_CODE.items() if issubclass(k, family))
    raise ValueError(
        f"{cls.__name__} stands for {', '.join(members)}, not {code.value}; "
        f"L0Error(message, ErrorCode.{code.value}) makes a {home.__name__}"
    )


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


def _attribute(obj: Any, name: str) -> Any:
    """``getattr`` that also survives a property raising (httpx's ``request`` does)."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _http_status(error: BaseException) -> tuple[int, Any] | None:
    """The HTTP status and headers an exception carries, if it carries one.

    On the exception itself (``status_code`` or ``status``, as most SDKs and
    aiohttp have it) or on its ``response`` (httpx's ``HTTPStatusError`` from
    ``raise_for_status()``, requests' ``HTTPError``).
    """
    response = _attribute(error, "response")
    for holder in (error, response):
        if holder is None:
            continue
        for name in ("status_code", "status"):
            status = _attribute(holder, name)
            if isinstance(status, int) and not isinstance(status, bool):
                headers = _attribute(holder, "headers")
                if headers is None and response is not None:
                    headers = _attribute(response, "headers")
                return status, headers
    return None


def _generic(error: BaseException) -> Classification:
    if isinstance(error, _BuiltinTimeout):
        return Classification(ErrorCode.TIMEOUT)
    # A status wins over the OSError rule: requests' HTTPError is an OSError.
    found = _http_status(error)
    if found is not None:
        status, headers = found
        return Classification(status_to_code(status), status, parse_retry_after(headers))
    if isinstance(error, (ConnectionError, EOFError)) or (
        isinstance(error, OSError) and not isinstance(error, FileNotFoundError | PermissionError)
    ):
        return Classification(ErrorCode.NETWORK_ERROR)
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

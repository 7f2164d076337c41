"""LiteLLM exceptions mapped to the L0 error taxonomy (the ``l0_classify_error`` hook).

Mapping is by exception type and HTTP status, never by message text. LiteLLM's
exceptions subclass the OpenAI SDK's, so this hook runs before l0-openai's
(``tryfirst``): ``ContextWindowExceededError`` is a ``BadRequestError`` to the
OpenAI SDK but a reason to fall back to L0.

=======================================================  ==============================
LiteLLM                                                  L0 code
=======================================================  ==============================
``Timeout``                                              ``TIMEOUT``
``APIConnectionError``                                   ``NETWORK_ERROR``
``RateLimitError``                                       ``RATE_LIMITED`` (Retry-After
                                                         from the response headers)
``ServiceUnavailableError``, ``BadGatewayError``,        ``SERVER_ERROR``
``InternalServerError``, ``APIError`` (in-band, 5xx)
``MidStreamFallbackError`` (a stream cut, truncated or   the code of the exception it
broken after its first chunk)                            wraps (``SERVER_ERROR`` if none)
... raised from an in-band error event                   by its ``code`` / ``type``
                                                         (``SERVER_ERROR`` if unknown)
... raised from a malformed server-sent event            ``SERVER_ERROR``
``ContextWindowExceededError``                           ``CONTEXT_LENGTH_EXCEEDED``
``ContentPolicyViolationError``                          ``CONTENT_POLICY``
``AuthenticationError``, ``PermissionDeniedError``       ``AUTH_ERROR``
``BadRequestError``, ``NotFoundError``,                  ``BAD_REQUEST``
``UnprocessableEntityError``, ``BudgetExceededError``
a ``BadRequestError`` whose ``code`` field is            ``CONTEXT_LENGTH_EXCEEDED``
``context_length_exceeded``
``code`` ``content_filter`` / ``content_policy_violation`` ``CONTENT_POLICY``
``RateLimitError`` with ``code`` ``insufficient_quota``  ``BAD_REQUEST`` (not retried)
=======================================================  ==============================

``litellm`` itself is never imported here: an exception can only be a LiteLLM
exception when the library is already loaded.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from l0_core.errors import Classification, ErrorCode, parse_retry_after

__all__ = ["classify_error"]

# Most specific first: the first class the exception is an instance of decides.
_BY_TYPE: tuple[tuple[str, ErrorCode], ...] = (
    ("ContextWindowExceededError", ErrorCode.CONTEXT_LENGTH_EXCEEDED),
    ("ContentPolicyViolationError", ErrorCode.CONTENT_POLICY),
    ("RateLimitError", ErrorCode.RATE_LIMITED),
    ("Timeout", ErrorCode.TIMEOUT),
    ("APIConnectionError", ErrorCode.NETWORK_ERROR),
    ("ServiceUnavailableError", ErrorCode.SERVER_ERROR),
    ("BadGatewayError", ErrorCode.SERVER_ERROR),
    ("InternalServerError", ErrorCode.SERVER_ERROR),
    ("AuthenticationError", ErrorCode.AUTH_ERROR),
    ("PermissionDeniedError", ErrorCode.AUTH_ERROR),
    ("NotFoundError", ErrorCode.BAD_REQUEST),
    ("UnprocessableEntityError", ErrorCode.BAD_REQUEST),
    ("BadRequestError", ErrorCode.BAD_REQUEST),
    ("BudgetExceededError", ErrorCode.BAD_REQUEST),
)


# The provider's structured error ``code`` / ``type`` fields that LiteLLM keeps on its
# exceptions (``error.code``, ``error.type``): they refine a generic ``BadRequestError`` or
# ``RateLimitError`` when LiteLLM did not pick the specific class itself.
_FIELD_CODES: dict[str, ErrorCode] = {
    "context_length_exceeded": ErrorCode.CONTEXT_LENGTH_EXCEEDED,
    "string_above_max_length": ErrorCode.CONTEXT_LENGTH_EXCEEDED,
    "content_filter": ErrorCode.CONTENT_POLICY,
    "content_policy_violation": ErrorCode.CONTENT_POLICY,
    "insufficient_quota": ErrorCode.BAD_REQUEST,  # retrying the same request cannot help
}
_REFINABLE = (ErrorCode.BAD_REQUEST, ErrorCode.RATE_LIMITED)

# The ``code`` / ``type`` of an error the provider sent inside a 200 stream
# (``data: {"error": {...}}``), which LiteLLM wraps as a connection error: any other is a
# server error, as for l0-openai.
_IN_BAND_CODES: dict[str, ErrorCode] = {
    **_FIELD_CODES,
    "rate_limit_exceeded": ErrorCode.RATE_LIMITED,
    "rate_limit_error": ErrorCode.RATE_LIMITED,
    "requests": ErrorCode.RATE_LIMITED,
    "tokens": ErrorCode.RATE_LIMITED,
    "authentication_error": ErrorCode.AUTH_ERROR,
    "invalid_api_key": ErrorCode.AUTH_ERROR,
}


def _refine(code: ErrorCode, error: BaseException) -> ErrorCode:
    for field in (getattr(error, "code", None), getattr(error, "type", None)):
        if isinstance(field, str) and field in _FIELD_CODES:
            return _FIELD_CODES[field]
    return code


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from, innermost last (a few levels at most)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 8 and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _in_band(original: BaseException) -> tuple[ErrorCode, str] | None:
    """What really broke a stream LiteLLM reports as a connection error: an error event of
    the provider (the OpenAI SDK's ``APIError`` with its ``code`` / ``type`` fields), or a
    malformed server-sent event (``json.JSONDecodeError``)."""
    openai = sys.modules.get("openai")
    for cause in _causes(original):
        if isinstance(cause, json.JSONDecodeError):
            return ErrorCode.SERVER_ERROR, "a malformed server-sent event"
        if (openai is not None and type(cause) is openai.APIError):  # exactly: in-band
            for field in (getattr(cause, "code", None), getattr(cause, "type", None)):
                if isinstance(field, str) and field in _IN_BAND_CODES:
                    return _IN_BAND_CODES[field], f"an error event ({field})"
            return ErrorCode.SERVER_ERROR, "an error event"
    return None


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def _api_error_code(status: int | None) -> ErrorCode:
    """``litellm.APIError``: an error the provider reported, often inside a 200 stream."""
    if status is None or status >= 500 or status == 200:
        return ErrorCode.SERVER_ERROR
    if status in (401, 403):
        return ErrorCode.AUTH_ERROR
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status == 408:
        return ErrorCode.TIMEOUT
    return ErrorCode.BAD_REQUEST


def _code(error: BaseException, exceptions: Any) -> ErrorCode | None:
    for name, code in _BY_TYPE:
        cls = getattr(exceptions, name, None)
        if isinstance(cls, type) and isinstance(error, cls):
            return code
    api_error = getattr(exceptions, "APIError", None)
    if isinstance(api_error, type) and isinstance(error, api_error):
        return _api_error_code(_status(error))
    return None


def _retry_after(error: BaseException) -> float | None:
    headers = getattr(getattr(error, "response", None), "headers", None)
    found = parse_retry_after(headers)
    if found is None:
        found = parse_retry_after(getattr(error, "litellm_response_headers", None))
    return found


def classify_error(error: BaseException) -> Classification | None:
    """Classify a LiteLLM exception; ``None`` when it is not one (or litellm is not loaded)."""
    exceptions = sys.modules.get("litellm.exceptions")
    if exceptions is None:
        return None
    name = type(error).__name__
    mid_stream = getattr(exceptions, "MidStreamFallbackError", None)
    if isinstance(mid_stream, type) and isinstance(error, mid_stream):
        # LiteLLM wraps what broke the stream after its first chunk; that decides.
        original = getattr(error, "original_exception", None)
        if not isinstance(original, BaseException):
            return Classification(ErrorCode.SERVER_ERROR, _status(error), None,
                                  f"{name}: the LiteLLM stream broke mid-way: {error}")
        found_in_band = _in_band(original)
        if found_in_band is not None:
            code, what = found_in_band
            return Classification(code, _status(error), None,
                                  f"{name}: the provider's stream sent {what}: {error}")
        inner = classify_error(original)
        code = inner.code if inner is not None else ErrorCode.SERVER_ERROR
        detail = f" ({type(original).__name__})"
        return Classification(code, _status(error), None,
                              f"{name}: the LiteLLM stream broke mid-way{detail}: {error}")
    found = _code(error, exceptions)
    if found is None:
        return None
    if found in _REFINABLE:
        found = _refine(found, error)
    retry_after = _retry_after(error) if found is ErrorCode.RATE_LIMITED else None
    return Classification(found, _status(error), retry_after, f"{name}: {error}")

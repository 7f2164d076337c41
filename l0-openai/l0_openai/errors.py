"""OpenAI exceptions mapped to the L0 error taxonomy (the ``l0_classify_error`` hook).

Mapping is by exception type, HTTP status, response headers and the ``type`` /
``code`` fields of OpenAI's error objects, never by message text:

=================================================  ===========================
OpenAI                                             L0 code
=================================================  ===========================
``APITimeoutError``, httpx/httpx2 timeouts         ``TIMEOUT``
``APIConnectionError``, httpx/httpx2 transport     ``NETWORK_ERROR``
errors (a connection cut mid-stream)
``RateLimitError`` (429)                           ``RATE_LIMITED`` (with the
                                                   ``retry-after-ms`` /
                                                   ``retry-after`` delay)
429 with code ``insufficient_quota``               ``BAD_REQUEST`` (not retried)
``InternalServerError`` (5xx, overloaded), 409     ``SERVER_ERROR``
``BadRequestError`` code ``context_length_exceeded`` ``CONTEXT_LENGTH_EXCEEDED``
code ``content_filter`` / ``content_policy_violation`` ``CONTENT_POLICY``
other 400, 404, 422                                ``BAD_REQUEST``
401, 403                                           ``AUTH_ERROR``
408                                                ``TIMEOUT``
``x-should-retry: false`` on a retryable status    ``BAD_REQUEST`` (not retried)
``x-should-retry: true`` on another 4xx            ``SERVER_ERROR`` (retried)
in-band ``{"error": {...}}`` (``APIError``)        by its ``code`` / ``type``
a malformed SSE line (``JSONDecodeError`` raised   ``SERVER_ERROR``
inside the SDK's stream)
=================================================  ===========================

``openai`` itself is never imported here: an exception can only be an OpenAI
exception when the SDK is already loaded.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from l0_core.errors import KINDS, Classification, ErrorCode, Recovery, parse_retry_after

__all__ = ["classify_error", "code_for_fields", "error_from_fields"]

_FIELD_CODES: Mapping[str, ErrorCode] = {
    # transient, server side
    "server_error": ErrorCode.SERVER_ERROR,
    "internal_error": ErrorCode.SERVER_ERROR,
    "internal_server_error": ErrorCode.SERVER_ERROR,
    "api_error": ErrorCode.SERVER_ERROR,
    "overloaded_error": ErrorCode.SERVER_ERROR,
    "engine_overloaded": ErrorCode.SERVER_ERROR,
    "service_unavailable": ErrorCode.SERVER_ERROR,
    "service_unavailable_error": ErrorCode.SERVER_ERROR,
    "cf_bad_gateway": ErrorCode.SERVER_ERROR,
    "cf_gateway_timeout": ErrorCode.SERVER_ERROR,
    # rate limits
    "rate_limit_exceeded": ErrorCode.RATE_LIMITED,
    "rate_limit_error": ErrorCode.RATE_LIMITED,
    "requests": ErrorCode.RATE_LIMITED,
    "tokens": ErrorCode.RATE_LIMITED,
    # billing: the same request will not succeed, another model or client may
    "insufficient_quota": ErrorCode.BAD_REQUEST,
    "billing_hard_limit_reached": ErrorCode.BAD_REQUEST,
    # input too long
    "context_length_exceeded": ErrorCode.CONTEXT_LENGTH_EXCEEDED,
    "string_above_max_length": ErrorCode.CONTEXT_LENGTH_EXCEEDED,
    # content policy
    "content_filter": ErrorCode.CONTENT_POLICY,
    "content_policy_violation": ErrorCode.CONTENT_POLICY,
    "image_content_policy_violation": ErrorCode.CONTENT_POLICY,
    "bio_policy": ErrorCode.CONTENT_POLICY,
    "misalignment_policy_violation": ErrorCode.CONTENT_POLICY,
    "moderation_blocked": ErrorCode.CONTENT_POLICY,  # images: the safety system refused
    # the request is wrong
    "invalid_request_error": ErrorCode.BAD_REQUEST,
    "invalid_prompt": ErrorCode.BAD_REQUEST,
    "model_not_found": ErrorCode.BAD_REQUEST,
    "not_found_error": ErrorCode.BAD_REQUEST,
    "data_residency_mismatch": ErrorCode.BAD_REQUEST,
    # credentials
    "authentication_error": ErrorCode.AUTH_ERROR,
    "invalid_api_key": ErrorCode.AUTH_ERROR,
    "invalid_organization": ErrorCode.AUTH_ERROR,
    "permission_error": ErrorCode.AUTH_ERROR,
    "permission_denied": ErrorCode.AUTH_ERROR,
    "unsupported_country_region_territory": ErrorCode.AUTH_ERROR,
    # timeouts
    "timeout": ErrorCode.TIMEOUT,
    "request_timeout": ErrorCode.TIMEOUT,
    "vector_store_timeout": ErrorCode.TIMEOUT,
}

_BAD_REQUEST_PREFIXES = ("invalid_", "image_", "unsupported_", "empty_", "failed_to_")


def code_for_fields(code: Any, type_: Any, default: ErrorCode | None = None) -> ErrorCode | None:
    """The L0 code for an OpenAI error object's ``code`` and ``type`` fields.

    ``code`` is looked at first (it is the more specific), then ``type``;
    ``default`` when neither is known.
    """
    for value in (code, type_):
        if isinstance(value, str) and value:
            found = _FIELD_CODES.get(value)
            if found is not None:
                return found
    for value in (code, type_):
        if isinstance(value, str) and value.startswith(_BAD_REQUEST_PREFIXES):
            return ErrorCode.BAD_REQUEST
    return default


def error_from_fields(
    fields: Any, *, where: str, default: ErrorCode = ErrorCode.UNKNOWN_ERROR
) -> Any:
    """An :class:`~l0_core.L0Error` for an error object (a dict or an SDK model)."""
    from l0_core.errors import L0Error

    def get(name: str) -> Any:
        if isinstance(fields, Mapping):
            return fields.get(name)
        return getattr(fields, name, None)

    code, type_, message = get("code"), get("type"), get("message")
    if type_ == "error":  # the event's own type (Responses API ``error`` events)
        type_ = None
    found = code_for_fields(code, type_, default) or default
    label = "/".join(str(v) for v in (type_, code) if v)
    text = message if isinstance(message, str) and message else "no message"
    return L0Error(
        f"OpenAI {where}{f' ({label})' if label else ''}: {text}",
        found,
        metadata={"openaiCode": code, "openaiType": type_, "param": get("param")},
    )


def _status_code(status: int, code_field: Any) -> ErrorCode:
    if status in (401, 403):
        return ErrorCode.AUTH_ERROR
    specific = _FIELD_CODES.get(code_field) if isinstance(code_field, str) else None
    if status < 500 and specific in (ErrorCode.CONTEXT_LENGTH_EXCEEDED, ErrorCode.CONTENT_POLICY):
        return specific
    if status == 429:
        # insufficient_quota: retrying the same request cannot help
        return ErrorCode.BAD_REQUEST if specific is ErrorCode.BAD_REQUEST else (
            ErrorCode.RATE_LIMITED
        )
    if status == 408:
        return ErrorCode.TIMEOUT
    if status == 409 or status >= 500:
        return ErrorCode.SERVER_ERROR  # the SDK retries these too
    if status == 413:
        return ErrorCode.CONTEXT_LENGTH_EXCEEDED
    if 400 <= status < 500:
        return ErrorCode.BAD_REQUEST
    return ErrorCode.UNKNOWN_ERROR


def _from_openai_module(error: BaseException, openai: Any) -> Classification | None:
    name = type(error).__name__
    if isinstance(error, openai.APITimeoutError):
        return Classification(ErrorCode.TIMEOUT, message=f"{name}: the OpenAI request timed out")
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error.__context__
        detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        return Classification(ErrorCode.NETWORK_ERROR,
                              message=f"{name}: connection to the OpenAI API failed{detail}")
    validation = getattr(openai, "APIResponseValidationError", None)
    if validation is not None and isinstance(error, validation):
        return Classification(ErrorCode.UNKNOWN_ERROR, getattr(error, "status_code", None))
    if isinstance(error, openai.APIStatusError):
        status = int(error.status_code)
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None)
        retry_after = parse_retry_after(headers)
        code_field, type_field = getattr(error, "code", None), getattr(error, "type", None)
        code = _status_code(status, code_field)
        note = ""
        should_retry = headers.get("x-should-retry") if headers is not None else None
        if should_retry == "false" and KINDS[code].recovery is Recovery.RETRY:
            code = ErrorCode.BAD_REQUEST
            note = " (the server said not to retry: x-should-retry: false)"
            retry_after = None
        elif should_retry == "true" and code in (ErrorCode.BAD_REQUEST,):
            code = ErrorCode.SERVER_ERROR
            note = " (the server asked for a retry: x-should-retry: true)"
        label = "/".join(str(v) for v in (type_field, code_field) if v)
        message = getattr(error, "message", None) or str(error)
        return Classification(
            code,
            status,
            retry_after,
            f"{name} {status}{f' ({label})' if label else ''}: {message}{note}",
        )
    if isinstance(error, openai.APIError):
        # An error the API reported inside a 200 stream (``data: {"error": {...}}``).
        code_field, type_field = getattr(error, "code", None), getattr(error, "type", None)
        in_band = code_for_fields(code_field, type_field) or ErrorCode.UNKNOWN_ERROR
        label = "/".join(str(v) for v in (type_field, code_field) if v)
        return Classification(
            in_band,
            message=f"OpenAI stream error{f' ({label})' if label else ''}: {error.message}",
        )
    length = getattr(openai, "LengthFinishReasonError", None)
    if length is not None and isinstance(error, length):
        return Classification(ErrorCode.INCOMPLETE, message=f"{name}: {error}")
    content_filter = getattr(openai, "ContentFilterFinishReasonError", None)
    if content_filter is not None and isinstance(error, content_filter):
        return Classification(ErrorCode.CONTENT_POLICY, message=f"{name}: {error}")
    if isinstance(error, json.JSONDecodeError) and _raised_in_openai(error):
        return Classification(
            ErrorCode.SERVER_ERROR,
            message=f"the OpenAI stream sent a malformed server-sent event ({error})",
        )
    return None


def _raised_in_openai(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and (module == "openai" or module.startswith("openai.")):
            return True
        tb = tb.tb_next
    return False


def _from_transport(error: BaseException) -> Classification | None:
    for module_name in ("httpx2", "httpx", "httpcore2", "httpcore"):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        timeout = getattr(module, "TimeoutException", None)
        if timeout is not None and isinstance(error, timeout):
            return Classification(ErrorCode.TIMEOUT)
        for cls_name in ("NetworkError", "RemoteProtocolError", "ProxyError"):
            cls = getattr(module, cls_name, None)
            if cls is not None and isinstance(error, cls):
                return Classification(ErrorCode.NETWORK_ERROR)
    anyio = sys.modules.get("anyio")
    if anyio is not None and isinstance(error, (anyio.EndOfStream, anyio.BrokenResourceError)):
        return Classification(ErrorCode.NETWORK_ERROR)
    return None


def classify_error(error: BaseException) -> Classification | None:
    """Classify an OpenAI SDK or HTTP transport exception; ``None`` if it is neither."""
    openai = sys.modules.get("openai")
    if openai is not None:
        found = _from_openai_module(error, openai)
        if found is not None:
            return found
    return _from_transport(error)

"""OpenAI exceptions mapped to L0 error codes (the ``l0_classify_error`` hook)."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import anyio
import openai
import pytest

import l0_core as l0
from l0_core.errors import classify
from l0_core.plugins import host as plugins
from l0_openai import classify_error

try:  # the SDK's transport: httpx2 for openai 3.x, httpx before
    import httpx2 as httpx_mod
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx as httpx_mod  # type: ignore[no-redef]

C = l0.ErrorCode
REQUEST = httpx_mod.Request("POST", "https://api.openai.com/v1/chat/completions")


def status_error(status: int, error: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> openai.APIStatusError:
    """The exception the SDK raises for this response."""
    body = {"error": {"message": "boom", "type": None, "param": None, "code": None,
                      **(error or {})}}
    response = httpx_mod.Response(status, headers=headers or {}, json=body, request=REQUEST)
    client = openai.AsyncOpenAI(api_key="test")
    return client._make_status_error(f"Error code: {status}", body=body, response=response)


def code_of(error: BaseException) -> l0.ErrorCode | None:
    found = classify_error(error)
    return None if found is None else found.code


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (400, {}, C.BAD_REQUEST),
        (400, {"code": "context_length_exceeded", "type": "invalid_request_error"},
         C.CONTEXT_LENGTH_EXCEEDED),
        (400, {"code": "content_policy_violation"}, C.CONTENT_POLICY),
        (400, {"code": "content_filter"}, C.CONTENT_POLICY),  # Azure's prompt filter
        (401, {"code": "invalid_api_key"}, C.AUTH_ERROR),
        (403, {}, C.AUTH_ERROR),
        (404, {"code": "model_not_found"}, C.BAD_REQUEST),
        (408, {}, C.TIMEOUT),
        (409, {}, C.SERVER_ERROR),
        (413, {}, C.CONTEXT_LENGTH_EXCEEDED),
        (422, {}, C.BAD_REQUEST),
        (429, {"code": "rate_limit_exceeded"}, C.RATE_LIMITED),
        (429, {"code": "insufficient_quota", "type": "insufficient_quota"}, C.BAD_REQUEST),
        (500, {"type": "server_error"}, C.SERVER_ERROR),
        (502, {}, C.SERVER_ERROR),
        (503, {}, C.SERVER_ERROR),
        (529, {"type": "overloaded_error"}, C.SERVER_ERROR),
    ],
)
def test_status_errors(status: int, error: dict[str, Any], expected: l0.ErrorCode) -> None:
    exc = status_error(status, error)
    found = classify_error(exc)
    assert found is not None
    assert found.code is expected
    assert found.status == status


def test_exception_classes_are_what_the_sdk_raises() -> None:
    assert isinstance(status_error(429), openai.RateLimitError)
    assert isinstance(status_error(400), openai.BadRequestError)
    assert isinstance(status_error(503), openai.InternalServerError)


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], delay: float | None) -> None:
    found = classify_error(status_error(429, headers=headers))
    assert found is not None and found.code is C.RATE_LIMITED
    assert found.retry_after == delay


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    found = classify_error(status_error(503, headers={"retry-after": when}))
    assert found is not None and found.code is C.SERVER_ERROR
    assert found.retry_after is not None and 27 <= found.retry_after <= 31


@pytest.mark.parametrize(
    ("status", "value", "expected"),
    [
        (429, "false", C.BAD_REQUEST),
        (503, "false", C.BAD_REQUEST),
        (400, "true", C.SERVER_ERROR),
        (401, "true", C.AUTH_ERROR),
        (429, "true", C.RATE_LIMITED),
        (400, "false", C.BAD_REQUEST),
    ],
)
def test_x_should_retry(status: int, value: str, expected: l0.ErrorCode) -> None:
    found = classify_error(status_error(status, headers={"x-should-retry": value,
                                                         "retry-after": "1"}))
    assert found is not None and found.code is expected
    if value == "false" and status in (429, 503):
        assert found.retry_after is None
        assert found.message is not None and "x-should-retry" in found.message


def test_connection_and_timeout_errors() -> None:
    assert code_of(openai.APIConnectionError(request=REQUEST)) is C.NETWORK_ERROR
    assert code_of(openai.APITimeoutError(request=REQUEST)) is C.TIMEOUT


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx_mod.ReadError("reset"), C.NETWORK_ERROR),
        (httpx_mod.RemoteProtocolError("peer closed connection"), C.NETWORK_ERROR),
        (httpx_mod.ConnectError("refused"), C.NETWORK_ERROR),
        (httpx_mod.ReadTimeout("slow"), C.TIMEOUT),
        (httpx_mod.ConnectTimeout("slow"), C.TIMEOUT),
        (anyio.EndOfStream(), C.NETWORK_ERROR),
        (anyio.BrokenResourceError(), C.NETWORK_ERROR),
    ],
)
def test_transport_errors(exc: BaseException, expected: l0.ErrorCode) -> None:
    """What a transport raises mid-stream when the SDK does not wrap it (openai 1.x)."""
    assert code_of(exc) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "x", "type": "server_error"}, C.SERVER_ERROR),
        ({"message": "x", "type": "requests", "code": "rate_limit_exceeded"}, C.RATE_LIMITED),
        ({"message": "x", "type": "invalid_request_error", "code": "context_length_exceeded"},
         C.CONTEXT_LENGTH_EXCEEDED),
        ({"message": "x", "type": "invalid_request_error"}, C.BAD_REQUEST),
        ({"message": "x", "code": "content_filter"}, C.CONTENT_POLICY),
        ({"message": "x", "type": "authentication_error"}, C.AUTH_ERROR),
        ({"message": "x", "type": "something_new"}, C.UNKNOWN_ERROR),
        ({"message": "x"}, C.UNKNOWN_ERROR),
    ],
)
def test_in_band_errors(body: dict[str, Any], expected: l0.ErrorCode) -> None:
    """``data: {"error": {...}}`` inside a 200 stream: the SDK raises a bare APIError."""
    exc = openai.APIError(body["message"], REQUEST, body=body)
    assert code_of(exc) is expected


def test_finish_reason_errors_of_the_parse_helpers() -> None:
    assert code_of(openai.ContentFilterFinishReasonError()) is C.CONTENT_POLICY


def test_json_errors_outside_the_sdk_are_not_ours() -> None:
    try:
        json.loads("{")
    except json.JSONDecodeError as exc:
        assert classify_error(exc) is None


def test_unrelated_exceptions_are_not_ours() -> None:
    assert classify_error(ValueError("x")) is None
    assert classify_error(KeyError("x")) is None


def test_through_l0_classify() -> None:
    exc = status_error(429, {"code": "rate_limit_exceeded"}, {"retry-after-ms": "1500"})
    error = classify(exc, plugins.get_host().classify_hook)
    assert isinstance(error, l0.L0Error)
    assert error.code is C.RATE_LIMITED
    assert error.retry_after == 1.5
    assert error.status == 429
    assert error.__cause__ is exc
    assert "RateLimitError 429" in error.message

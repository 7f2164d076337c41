"""The error class tree: the code decides the class, and HTTP status errors are classified."""

from __future__ import annotations

import builtins
import importlib
import pickle
from types import ModuleType
from typing import Any, ClassVar

import pytest

import l0_core as l0
from l0_core import errors
from l0_core.errors import (
    AbortedError,
    ConfigError,
    ContentError,
    ErrorCode,
    FatalError,
    GuardrailError,
    L0Error,
    NetworkError,
    ProviderError,
    RateLimitError,
    RecordingError,
    TimeoutException,
    classify,
)
from l0_core.testing import Script, ScriptedSource
from tests.core.helpers import Recorder

pytestmark = pytest.mark.usefixtures("instant")

C = ErrorCode

# The tree as the module documentation draws it, spelled out once more so that a change is a
# deliberate one.
FAMILY: dict[ErrorCode, type[L0Error]] = {
    C.NETWORK_ERROR: NetworkError,
    C.INITIAL_TOKEN_TIMEOUT: TimeoutException,
    C.INTER_TOKEN_TIMEOUT: TimeoutException,
    C.TOTAL_TIMEOUT: TimeoutException,
    C.TIMEOUT: TimeoutException,
    C.RATE_LIMITED: RateLimitError,
    C.SERVER_ERROR: ProviderError,
    C.UNKNOWN_ERROR: ProviderError,
    C.CONTENT_POLICY: ProviderError,
    C.CONTEXT_LENGTH_EXCEEDED: ProviderError,
    C.BAD_REQUEST: ProviderError,
    C.ALL_STREAMS_EXHAUSTED: ProviderError,
    C.ZERO_OUTPUT: ContentError,
    C.INCOMPLETE: ContentError,
    C.GUARDRAIL_VIOLATION: GuardrailError,
    C.FATAL_GUARDRAIL_VIOLATION: GuardrailError,
    C.DRIFT_DETECTED: GuardrailError,
    C.AUTH_ERROR: FatalError,
    C.INVALID_STREAM: FatalError,
    C.ADAPTER_NOT_FOUND: FatalError,
    C.FEATURE_NOT_ENABLED: FatalError,
    C.INTERNAL_ERROR: FatalError,
    C.CONFIG_ERROR: ConfigError,
    C.UNKNOWN_PLUGIN: ConfigError,
    C.NO_CONSENSUS: ContentError,
    C.POOL_CLOSED: FatalError,
    C.RECORDING_ERROR: RecordingError,
    C.STREAM_ABORTED: AbortedError,
}


def test_every_code_has_exactly_one_class() -> None:
    assert set(FAMILY) == set(ErrorCode)
    assert dict(errors.CLASS_FOR_CODE) == FAMILY


@pytest.mark.parametrize("code", list(ErrorCode))
def test_the_base_class_makes_the_precise_class_for_a_code(code: ErrorCode) -> None:
    error = L0Error("boom", code, status=500, token_count=3)
    assert type(error) is FAMILY[code]
    assert error.code is code
    assert (error.message, error.status, error.token_count) == ("boom", 500, 3)
    assert type(L0Error("boom", code=code.value)) is FAMILY[code]  # by keyword, as a str


def test_families_catch_their_members() -> None:
    drift = L0Error("drift", C.DRIFT_DETECTED)
    assert isinstance(drift, GuardrailError) and isinstance(drift, ContentError)
    bad = L0Error("bad value", C.CONFIG_ERROR)
    assert isinstance(bad, ConfigError) and isinstance(bad, FatalError)
    assert isinstance(bad, ValueError) and isinstance(bad, TypeError)
    assert not isinstance(L0Error("auth", C.AUTH_ERROR), ValueError)


def test_a_family_given_a_member_code_makes_the_member() -> None:
    assert type(ContentError("x", C.GUARDRAIL_VIOLATION)) is GuardrailError
    assert type(FatalError("x", C.UNKNOWN_PLUGIN)) is ConfigError


@pytest.mark.parametrize(
    ("cls", "code"),
    [(GuardrailError, C.NETWORK_ERROR), (ConfigError, C.AUTH_ERROR),
     (TimeoutException, C.RATE_LIMITED), (ContentError, C.SERVER_ERROR)],
)
def test_a_class_given_a_code_outside_its_family_is_an_error(
    cls: type[L0Error], code: ErrorCode
) -> None:
    with pytest.raises(ValueError, match=f"{cls.__name__} stands for .*not {code.value}"):
        cls("x", code)


@pytest.mark.parametrize(
    ("cls", "code"),
    [(L0Error, C.INTERNAL_ERROR), (NetworkError, C.NETWORK_ERROR),
     (TimeoutException, C.TIMEOUT), (RateLimitError, C.RATE_LIMITED),
     (ProviderError, C.UNKNOWN_ERROR), (ContentError, C.INCOMPLETE),
     (GuardrailError, C.GUARDRAIL_VIOLATION), (FatalError, C.INTERNAL_ERROR),
     (ConfigError, C.CONFIG_ERROR), (AbortedError, C.STREAM_ABORTED)],
)
def test_without_a_code_a_class_uses_its_default(cls: type[L0Error], code: ErrorCode) -> None:
    error = cls("x")
    assert error.code is code
    assert type(error) is FAMILY[code]


def test_timeout_and_guardrail_details() -> None:
    assert TimeoutException("slow").timeout is None
    timer = L0Error("slow", C.INTER_TOKEN_TIMEOUT)
    assert isinstance(timer, TimeoutException) and timer.timeout is None
    assert TimeoutException("slow", C.TOTAL_TIMEOUT, timeout=2.5).timeout == 2.5
    assert GuardrailError("bad", violations=["v"]).violations == ("v",)
    assert L0Error("bad", C.GUARDRAIL_VIOLATION).violations == ()  # type: ignore[attr-defined]


def test_a_users_own_subclasses_keep_working() -> None:
    class AppError(L0Error):
        pass

    class ProxyFailure(ProviderError):
        pass

    assert type(AppError("x", C.NETWORK_ERROR)) is AppError
    assert type(ProxyFailure("x", C.SERVER_ERROR)) is ProxyFailure
    with pytest.raises(ValueError, match="ProxyFailure stands for"):
        ProxyFailure("x", C.RATE_LIMITED)


def test_nothing_shadows_a_builtin() -> None:
    assert not [name for name in errors.__all__ if hasattr(builtins, name)]
    assert "TimeoutError" not in errors.__all__
    assert not hasattr(errors, "TimeoutError")
    assert not [name for name in l0.__all__ if hasattr(builtins, name)]
    assert issubclass(TimeoutException, l0.L0Error)


def test_name_and_json_stay_canonical() -> None:
    for code in ErrorCode:
        error = L0Error("x", code)
        assert error.name == "L0Error"
        assert error.to_json()["name"] == "L0Error"
        assert error.to_json()["code"] == code.value
    assert repr(L0Error("x", C.RATE_LIMITED)) == "RateLimitError(RATE_LIMITED: 'x')"


@pytest.mark.parametrize("code", list(ErrorCode))
def test_errors_pickle_with_their_class_and_code(code: ErrorCode) -> None:
    copy = pickle.loads(pickle.dumps(L0Error("x", code, status=418)))
    assert (type(copy), copy.code, copy.message, copy.status) == (FAMILY[code], code, "x", 418)


@pytest.mark.parametrize(
    ("error", "cls", "code"),
    [
        (ConnectionResetError(), NetworkError, C.NETWORK_ERROR),
        (builtins.TimeoutError(), TimeoutException, C.TIMEOUT),
        (RuntimeError("what?"), ProviderError, C.UNKNOWN_ERROR),
    ],
)
def test_classify_makes_the_precise_class(
    error: BaseException, cls: type[L0Error], code: ErrorCode
) -> None:
    found = classify(error)
    assert (type(found), found.code) == (cls, code)
    assert found.__cause__ is error


async def test_the_runtime_raises_the_precise_class() -> None:
    source = ScriptedSource([Script(["a"], fail_after=0)])
    with pytest.raises(NetworkError) as info:
        await l0.run(stream=source, retry=l0.Retry.none()).read()
    assert info.value.code is C.NETWORK_ERROR

    async def nothing() -> Any:
        for piece in ("", " "):
            yield piece

    with pytest.raises(ContentError) as empty:
        await l0.run(stream=nothing, retry=l0.Retry.none()).read()
    assert empty.value.code is C.ZERO_OUTPUT


# -- HTTP status errors from plain HTTP clients (httpx's raise_for_status) ----------------


def _httpx() -> ModuleType:
    """httpx, or its fork httpx2 (what the installed openai SDK depends on)."""
    for name in ("httpx", "httpx2"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.fail("neither httpx nor httpx2 is installed; the openai SDK depends on one")


def status_error(status: int, headers: dict[str, str] | None = None) -> BaseException:
    """A real ``HTTPStatusError``, made the way ``response.raise_for_status()`` makes it."""
    httpx = _httpx()
    request = httpx.Request("POST", "https://llm.example.com/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        return exc
    raise AssertionError(f"raise_for_status() did not raise for {status}")


@pytest.mark.parametrize(
    ("status", "headers", "cls", "code", "retry_after"),
    [
        (401, {}, FatalError, C.AUTH_ERROR, None),
        (403, {}, FatalError, C.AUTH_ERROR, None),
        (429, {"Retry-After": "7"}, RateLimitError, C.RATE_LIMITED, 7.0),
        (429, {"retry-after-ms": "1500"}, RateLimitError, C.RATE_LIMITED, 1.5),
        (500, {}, ProviderError, C.SERVER_ERROR, None),
        (503, {"Retry-After": "2"}, ProviderError, C.SERVER_ERROR, 2.0),
        (404, {}, ProviderError, C.BAD_REQUEST, None),
    ],
)
def test_http_status_error_is_classified_by_its_response(
    status: int, headers: dict[str, str], cls: type[L0Error], code: ErrorCode,
    retry_after: float | None,
) -> None:
    found = classify(status_error(status, headers))
    assert (type(found), found.code, found.status, found.retry_after) == (
        cls, code, status, retry_after)


def test_a_status_on_the_response_wins_over_the_oserror_rule() -> None:
    class Response:
        status_code = 429
        headers: ClassVar[dict[str, str]] = {"retry-after": "3"}

    class RequestsStyleHTTPError(OSError):  # requests' HTTPError is an OSError
        response = Response()

    found = classify(RequestsStyleHTTPError("429 Client Error"))
    assert (found.code, found.status, found.retry_after) == (C.RATE_LIMITED, 429, 3.0)


async def test_http_401_makes_exactly_one_attempt() -> None:
    source = ScriptedSource([Script(["never"], fail_after=0, error=status_error(401))] * 4)
    stream = l0.run(stream=source, retry=l0.Retry(attempts=3, network_attempts=3))
    with pytest.raises(FatalError) as info:
        await stream.read()
    assert source.calls == 1
    assert (info.value.code, info.value.status) == (C.AUTH_ERROR, 401)
    assert [e.code for e in stream.errors] == [C.AUTH_ERROR]


async def test_http_429_is_retried_after_its_retry_after() -> None:
    rec = Recorder()
    limited = Script(["never"], fail_after=0, error=status_error(429, {"Retry-After": "0"}))
    source = ScriptedSource([limited, limited, Script(["ok"])])
    stream = l0.run(stream=source, on_event=rec,
                    retry=l0.Retry(base_delay=30.0, max_delay=30.0, strategy="fixed"))
    assert await stream.read() == "ok"
    assert source.calls == 3
    assert [e.code for e in stream.errors] == [C.RATE_LIMITED, C.RATE_LIMITED]
    # Retry-After: 0 wins over the 30 s the backoff formula would wait
    assert [e["delayMs"] for e in rec.of("RETRY_ATTEMPT")] == [0.0, 0.0]
    assert [e["isNetwork"] for e in rec.of("RETRY_ATTEMPT")] == [True, True]

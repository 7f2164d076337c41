"""LiteLLM's exceptions, classified by type (never by message text), and what L0 does with
each: retry, fall back, or stop."""

from __future__ import annotations

import httpx
import litellm
import pytest

import l0_core as l0
from l0_core.plugins import host as plugins
from l0_core.testing.openai_server import OpenAIServer, Turn
from l0_litellm import classify_error

from .support import FAST, LITELLM_MODEL, MESSAGES, OK, OK_EVENTS, collect, litellm_args

ARGS = {"message": "words that are never read", "llm_provider": "openai", "model": "gpt-4o"}


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers,
                          request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))


CASES: list[tuple[BaseException, l0.ErrorCode]] = [
    (litellm.exceptions.RateLimitError(**ARGS), l0.ErrorCode.RATE_LIMITED),
    (litellm.exceptions.ServiceUnavailableError(**ARGS), l0.ErrorCode.SERVER_ERROR),
    (litellm.exceptions.InternalServerError(**ARGS), l0.ErrorCode.SERVER_ERROR),
    (litellm.exceptions.BadGatewayError(**ARGS), l0.ErrorCode.SERVER_ERROR),
    (litellm.exceptions.Timeout(**ARGS), l0.ErrorCode.TIMEOUT),
    (litellm.exceptions.APIConnectionError(**ARGS), l0.ErrorCode.NETWORK_ERROR),
    (litellm.exceptions.ContextWindowExceededError(**ARGS), l0.ErrorCode.CONTEXT_LENGTH_EXCEEDED),
    (litellm.exceptions.ContentPolicyViolationError(**ARGS), l0.ErrorCode.CONTENT_POLICY),
    (litellm.exceptions.BadRequestError(**ARGS), l0.ErrorCode.BAD_REQUEST),
    (litellm.exceptions.AuthenticationError(**ARGS), l0.ErrorCode.AUTH_ERROR),
    (litellm.exceptions.PermissionDeniedError(**ARGS, response=_response(403)),
     l0.ErrorCode.AUTH_ERROR),
    (litellm.exceptions.NotFoundError(**ARGS), l0.ErrorCode.BAD_REQUEST),
    (litellm.exceptions.APIError(500, **ARGS), l0.ErrorCode.SERVER_ERROR),
]


@pytest.mark.parametrize(("error", "code"), CASES, ids=[type(e).__name__ for e, _ in CASES])
def test_each_exception_type_by_type(error: BaseException, code: l0.ErrorCode) -> None:
    found = classify_error(error)
    assert found is not None
    assert found.code is code
    # through the plugin hook too: l0-litellm answers before l0-openai (LiteLLM's exceptions
    # are OpenAI exceptions, and OpenAI would call a ContextWindowExceededError a bad request)
    assert plugins.get_host().classify_hook(error=error) == found


def test_the_retry_after_header_of_a_rate_limit() -> None:
    response = _response(429, **{"retry-after": "2"})
    error = litellm.exceptions.RateLimitError(**ARGS, response=response)
    found = classify_error(error)
    assert found is not None
    assert (found.code, found.status, found.retry_after) == (l0.ErrorCode.RATE_LIMITED, 429, 2.0)


def test_other_exceptions_are_not_litellm_s() -> None:
    assert classify_error(ValueError("x")) is None
    assert classify_error(RuntimeError("rate limit context window")) is None


def test_a_mid_stream_error_takes_the_code_of_what_it_wraps() -> None:
    inner = litellm.exceptions.RateLimitError(**ARGS)
    error = litellm.exceptions.MidStreamFallbackError(**ARGS, original_exception=inner)
    found = classify_error(error)
    assert found is not None
    assert found.code is l0.ErrorCode.RATE_LIMITED
    bare = litellm.exceptions.MidStreamFallbackError(**ARGS)
    assert classify_error(bare) is not None
    assert classify_error(bare).code is l0.ErrorCode.SERVER_ERROR  # type: ignore[union-attr]


@pytest.mark.parametrize(("status", "code"), [
    (400, l0.ErrorCode.BAD_REQUEST), (401, l0.ErrorCode.AUTH_ERROR),
    (403, l0.ErrorCode.AUTH_ERROR), (404, l0.ErrorCode.BAD_REQUEST),
])
async def test_fatal_statuses_stop_after_one_request(status: int, code: l0.ErrorCode) -> None:
    async with OpenAIServer(turns=[Turn(status=status), OK]) as server:
        stream = l0.run(stream=lambda: litellm.acompletion(**litellm_args(server)), timeout=FAST)
        with pytest.raises(l0.L0Error) as caught:
            await stream.read()
        assert caught.value.code is code
        assert caught.value.status == status
        assert len(server.requests) == 1


async def test_context_window_exceeded_falls_back_to_the_next_model() -> None:
    too_long = Turn(status=400, error={"type": "invalid_request_error",
                                       "code": "context_length_exceeded"})
    async with OpenAIServer(turns=[too_long, OK]) as server:
        stream = l0.run(
            stream=lambda: litellm.acompletion(**litellm_args(server)),
            fallbacks=[lambda: litellm.acompletion(**litellm_args(server, model="openai/big"))],
            timeout=FAST,
        )
        assert await collect(stream) == ["error:CONTEXT_LENGTH_EXCEEDED:fallback", *OK_EVENTS]
        assert [r.body["model"] for r in server.requests] == ["gpt-4o", "big"]
        assert all(r.body["messages"] == MESSAGES for r in server.requests)


def test_the_model_name_is_litellm_s() -> None:
    assert LITELLM_MODEL == "openai/gpt-4o"

"""Retry budgets, backoff, Retry-After, vetoes and classification."""

from __future__ import annotations

from typing import Any

import pytest

import l0_core as l0
from l0_core.errors import Classification, ErrorCode, classify
from l0_core.runtime.retry import backoff_delay
from l0_core.testing import Script, ScriptedSource
from tests.core.helpers import Recorder, consume

pytestmark = pytest.mark.usefixtures("instant")


class HTTPError(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.headers = headers or {}


def test_first_retry_waits_the_base_delay() -> None:
    assert backoff_delay("exponential", 0, 1.0, 10.0) == 1.0
    assert backoff_delay("exponential", 1, 1.0, 10.0) == 2.0
    assert backoff_delay("exponential", 10, 1.0, 10.0) == 10.0
    assert backoff_delay("linear", 0, 0.5, 10.0) == 0.5
    assert backoff_delay("linear", 2, 0.5, 10.0) == 1.5
    assert backoff_delay("fixed", 5, 2.0, 10.0) == 2.0
    assert backoff_delay("full-jitter", 0, 1.0, 10.0, rng=lambda: 0.5) == 0.5
    assert backoff_delay("fixed-jitter", 0, 1.0, 10.0, rng=lambda: 0.0) == 0.5
    assert backoff_delay("fixed-jitter", 0, 1.0, 10.0, rng=lambda: 1.0) == 1.0


def test_presets() -> None:
    assert (l0.Retry.minimal().attempts, l0.Retry.minimal().strategy) == (2, "linear")
    assert l0.Retry.recommended().strategy == "fixed-jitter"
    assert l0.Retry.strict().strategy == "full-jitter"
    assert l0.Retry.exponential().attempts == 4
    assert l0.Retry.mobile().max_delay == 15.0
    assert l0.Retry.edge().base_delay == 0.5
    assert l0.Retry(max_attempts=5).attempts == 5


def test_retry_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="attempts"):
        l0.Retry(attempts=-1)
    with pytest.raises(ValueError, match="strategy"):
        l0.Retry(strategy="sometimes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TimeoutError(), ErrorCode.TIMEOUT),
        (ConnectionResetError(), ErrorCode.NETWORK_ERROR),
        (BrokenPipeError(), ErrorCode.NETWORK_ERROR),
        (HTTPError(429), ErrorCode.RATE_LIMITED),
        (HTTPError(503), ErrorCode.SERVER_ERROR),
        (HTTPError(400), ErrorCode.BAD_REQUEST),
        (HTTPError(404), ErrorCode.BAD_REQUEST),
        (HTTPError(422), ErrorCode.BAD_REQUEST),
        (HTTPError(401), ErrorCode.AUTH_ERROR),
        (HTTPError(403), ErrorCode.AUTH_ERROR),
        # message text never decides: these mention network words but are not network errors
        (ValueError("connection reset by peer"), ErrorCode.UNKNOWN_ERROR),
        (RuntimeError("Request processed incorrectly"), ErrorCode.UNKNOWN_ERROR),
    ],
)
def test_classification_by_type_and_status(error: BaseException, code: ErrorCode) -> None:
    assert classify(error).code is code


def test_retry_after_headers() -> None:
    assert classify(HTTPError(429, {"retry-after": "3"})).retry_after == 3.0
    assert classify(HTTPError(429, {"retry-after-ms": "1500"})).retry_after == 1.5
    later = classify(HTTPError(429, {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}))
    assert later.retry_after is not None and later.retry_after > 1000


def test_plugin_classification_wins() -> None:
    def hook(error: BaseException) -> Classification | None:
        return Classification(ErrorCode.CONTENT_POLICY, 400, None, "policy")

    err = classify(ValueError("x"), hook)
    assert err.code is ErrorCode.CONTENT_POLICY
    assert err.message == "policy"
    assert isinstance(err.__cause__, ValueError)


async def test_network_errors_use_the_network_budget() -> None:
    source = ScriptedSource([Script(["x"], fail_after=0)] * 3 + [Script(["done"])])
    stream = l0.run(stream=source, retry=l0.Retry(attempts=0, network_attempts=3))
    assert await stream.read() == "done"
    assert source.calls == 4
    assert (stream.state.network_retry_count, stream.state.model_retry_count) == (3, 0)


async def test_model_errors_use_the_attempts_budget() -> None:
    source = ScriptedSource([Script(["x"], fail_after=0, error=RuntimeError("model broke"))])
    got = await consume(l0.run(stream=source, retry=l0.Retry(attempts=2, network_attempts=9)))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is ErrorCode.UNKNOWN_ERROR
    assert source.calls == 3


async def test_max_retries_caps_everything() -> None:
    source = ScriptedSource([Script(["x"], fail_after=0)])
    got = await consume(l0.run(stream=source, retry=l0.Retry(network_attempts=10, max_retries=2)))
    assert got.error is not None
    assert source.calls == 3


async def test_client_errors_are_not_retried() -> None:
    for status in (400, 404, 422):
        source = ScriptedSource([Script(["x"], fail_after=0, error=HTTPError(status))])
        got = await consume(l0.run(stream=source))
        assert isinstance(got.error, l0.L0Error)
        assert got.error.code is ErrorCode.BAD_REQUEST
        assert got.error.status == status
        assert source.calls == 1


async def test_auth_errors_halt_even_with_fallbacks() -> None:
    primary = ScriptedSource([Script(["x"], fail_after=0, error=HTTPError(401))])
    backup = ScriptedSource([Script(["fine"])])
    got = await consume(l0.run(stream=primary, fallbacks=[backup]))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is ErrorCode.AUTH_ERROR
    assert (primary.calls, backup.calls) == (1, 0)


async def test_retry_after_is_honoured_and_reported() -> None:
    rec = Recorder()
    source = ScriptedSource(
        [Script(["x"], fail_after=0, error=HTTPError(429, {"retry-after": "2"})), Script(["ok"])]
    )
    assert await l0.run(stream=source, on_event=rec).read() == "ok"
    assert [e["delayMs"] for e in rec.of("RETRY_ATTEMPT")] == [2000.0]


async def test_retry_after_above_cap_moves_to_fallback_at_once() -> None:
    too_long = HTTPError(429, {"retry-after": "600"})
    primary = ScriptedSource([Script(["x"], fail_after=0, error=too_long)])
    backup = ScriptedSource([Script(["backup"])])
    stream = l0.run(stream=primary, fallbacks=[backup], retry=l0.Retry(max_retry_after=30))
    assert await stream.read() == "backup"
    assert (primary.calls, backup.calls) == (1, 1)


async def test_per_error_type_delays() -> None:
    rec = Recorder()
    source = ScriptedSource([Script(["x"], fail_after=0), Script(["ok"])])
    retry = l0.Retry(strategy="exponential", error_type_delays={"NETWORK_ERROR": 0.25})
    assert await l0.run(stream=source, retry=retry, on_event=rec).read() == "ok"
    assert [e["delayMs"] for e in rec.of("RETRY_ATTEMPT")] == [250.0]


@pytest.mark.parametrize("is_async", [False, True])
async def test_should_retry_can_veto(is_async: bool) -> None:
    calls: list[tuple[Any, ...]] = []

    def veto(error: l0.L0Error, state: l0.State, attempt: int, category: str) -> bool:
        calls.append((error.code, attempt, category))
        return False

    async def aveto(*args: Any) -> bool:
        return veto(*args)

    source = ScriptedSource([Script(["x"], fail_after=0), Script(["ok"])])
    retry = l0.Retry(should_retry=aveto if is_async else veto)
    got = await consume(l0.run(stream=source, retry=retry))
    assert got.error is not None
    assert source.calls == 1
    assert calls == [(ErrorCode.NETWORK_ERROR, 0, "network")]


@pytest.mark.parametrize("is_async", [False, True])
async def test_calculate_delay(is_async: bool) -> None:
    rec = Recorder()
    seen: list[l0.RetryContext] = []

    def delay(ctx: l0.RetryContext) -> float:
        seen.append(ctx)
        return 0.125

    async def adelay(ctx: l0.RetryContext) -> float:
        return delay(ctx)

    source = ScriptedSource([Script(["x"], fail_after=0), Script(["ok"])])
    retry = l0.Retry(calculate_delay=adelay if is_async else delay)
    assert await l0.run(stream=source, retry=retry, on_event=rec).read() == "ok"
    assert [e["delayMs"] for e in rec.of("RETRY_ATTEMPT")] == [125.0]
    assert seen[0].attempt == 0 and seen[0].is_network


async def test_retry_policy_by_name() -> None:
    source = ScriptedSource([Script(["x"], fail_after=0)])
    got = await consume(l0.run(stream=source, retry="none"))
    assert got.error is not None
    assert source.calls == 1


async def test_retry_on_limits_codes() -> None:
    source = ScriptedSource([Script([]), Script(["ok"])])
    retry = l0.Retry(retry_on=frozenset({ErrorCode.NETWORK_ERROR}))
    got = await consume(l0.run(stream=source, retry=retry))
    assert isinstance(got.error, l0.L0Error)
    assert got.error.code is ErrorCode.ZERO_OUTPUT
    assert source.calls == 1

"""The border: foreign errors become ProviderErrors; retry timing follows the policy."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from server.errors import (
    ErrorCode,
    ProtocolError,
    ProviderAuth,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
)
from server.providers.base import map_provider_errors, retry_after_seconds, status_error
from server.providers.resilience import RetryPolicy


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, ErrorCode.PROVIDER_RATE_LIMITED, True),
        (401, ErrorCode.PROVIDER_AUTH, False),
        (403, ErrorCode.PROVIDER_AUTH, False),
        (408, ErrorCode.PROVIDER_TIMEOUT, True),
        (409, ErrorCode.PROVIDER_ERROR, True),
        (500, ErrorCode.PROVIDER_ERROR, True),
        (503, ErrorCode.PROVIDER_ERROR, True),
        (529, ErrorCode.PROVIDER_ERROR, True),
        (400, ErrorCode.PROVIDER_ERROR, False),
        (404, ErrorCode.PROVIDER_ERROR, False),
    ],
)
def test_status_codes_map_to_error_codes(status: int, code: ErrorCode, retryable: bool) -> None:
    error = status_error("p", status, detail="upstream body with sk-secret")
    assert error.code is code and error.retryable is retryable
    assert "sk-secret" not in error.message  # upstream bodies are logged, not sent


def test_rate_limit_carries_retry_after() -> None:
    error = status_error("p", 429, retry_after_s=3.0)
    assert isinstance(error, ProviderRateLimited) and error.retry_after_s == 3.0


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "-4"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after_seconds({"retry-after": when})
    assert seconds is not None and 25 < seconds <= 30


@pytest.mark.parametrize(
    ("raised", "expected", "retryable"),
    [
        (TimeoutError(), ProviderTimeout, True),
        (ConnectionResetError(), ProviderError, True),
        (ValueError("bad json"), ProviderError, False),
    ],
)
def test_only_provider_errors_escape(
    raised: Exception, expected: type[ProviderError], retryable: bool
) -> None:
    with pytest.raises(ProviderError) as caught, map_provider_errors("p"):
        raise raised
    assert type(caught.value) is expected and caught.value.retryable is retryable


def test_tokenmux_errors_and_cancellation_pass_untouched() -> None:
    with pytest.raises(ProtocolError), map_provider_errors("p"):
        raise ProtocolError("bad params")
    with pytest.raises(ProviderAuth), map_provider_errors("p"):
        raise ProviderAuth("no")
    with pytest.raises(asyncio.CancelledError), map_provider_errors("p"):
        raise asyncio.CancelledError


def test_backoff_is_full_jitter_doubling_to_a_cap() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base_s=0.5, backoff_max_s=4.0)
    rng = random.Random(1)
    error = ProviderError("x")
    for attempt in range(1, 10):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, error, rng) for _ in range(200)]
        assert all(d is not None and 0 <= d <= ceiling for d in delays)
        assert max(d for d in delays if d is not None) > ceiling * 0.9  # spread over the range
    assert policy.delay(10, error, rng) is None  # attempts used up


def test_retry_after_is_waited_up_to_its_cap() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base_s=0.01, retry_after_max_s=10)
    rng = random.Random(1)
    assert policy.delay(1, ProviderRateLimited("x", retry_after_s=7), rng) == 7
    assert policy.delay(1, ProviderRateLimited("x", retry_after_s=11), rng) is None
    assert policy.delay(3, ProviderRateLimited("x", retry_after_s=1), rng) is None

"""The rate limit's policy without Redis or a web framework: a stand-in counter decides."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import pytest

from ev_api.limiter import (
    WINDOW_MS,
    Decision,
    LimiterUnavailable,
    RateLimiter,
    client_id,
)
from ev_storage import StorageError, StorageTimedOut, StorageUnavailable, WindowCount

pytestmark = pytest.mark.anyio


class FakeCounter:
    """Counts in memory, or fails as told: raises ``error``, or waits ``delay`` seconds first."""

    def __init__(self, *, ms_left: int = WINDOW_MS) -> None:
        self.hits: dict[str, int] = {}
        self.ms_left = ms_left
        self.error: Exception | None = None
        self.delay = 0.0

    async def hit(self, client_id: str) -> WindowCount:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        self.hits[client_id] = self.hits.get(client_id, 0) + 1
        return WindowCount(self.hits[client_id], self.ms_left)


def limiter(counter: FakeCounter, *, limit: int = 2, fail_open: bool = False) -> RateLimiter:
    return RateLimiter(counter, limit=limit, fail_open=fail_open, timeout=0.2)


def test_client_id_is_the_start_of_the_identitys_sha256() -> None:
    # The counter keys of the API before the split: a running deployment's counters carry on.
    assert client_id("key:secret-key") == hashlib.sha256(b"key:secret-key").hexdigest()[:32]
    assert client_id("key:a") != client_id("addr:a")


async def test_allows_up_to_the_limit_per_client_then_refuses() -> None:
    counter = FakeCounter(ms_left=41_500)
    check = limiter(counter, limit=2)
    assert [(await check.hit("key:alpha")).allowed for _ in range(3)] == [True, True, False]
    assert await check.hit("key:alpha") == Decision(allowed=False, count=4, retry_after_s=42)
    assert (await check.hit("key:beta")).allowed
    # Only hashes reach the counter, never the identity (an API key) itself.
    assert set(counter.hits) == {client_id("key:alpha"), client_id("key:beta")}


@pytest.mark.parametrize(("ms_left", "seconds"), [(0, 1), (1, 1), (1_000, 1), (1_001, 2)])
async def test_retry_after_is_whole_seconds_and_at_least_one(ms_left: int, seconds: int) -> None:
    decision = await limiter(FakeCounter(ms_left=ms_left), limit=0).hit("addr:x")
    assert decision.retry_after_s == seconds


async def test_redis_unavailable_failing_open_allows_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = FakeCounter()
    counter.error = StorageUnavailable("Connection refused")
    with caplog.at_level(logging.WARNING, logger="ev_api.limiter"):
        decision = await limiter(counter, fail_open=True).hit("key:secret-key")
    assert decision == Decision(allowed=True, count=0, retry_after_s=0)
    assert "request allowed (fail open)" in caplog.text
    assert "Connection refused" in caplog.text
    assert "secret-key" not in caplog.text


@pytest.mark.parametrize(
    "error", [StorageUnavailable("Connection refused"), StorageError("Redis error: NOPERM")]
)
async def test_redis_failing_closed_refuses(
    error: StorageError, caplog: pytest.LogCaptureFixture
) -> None:
    counter = FakeCounter()
    counter.error = error
    with (
        caplog.at_level(logging.WARNING, logger="ev_api.limiter"),
        pytest.raises(LimiterUnavailable) as refused,
    ):
        await limiter(counter, fail_open=False).hit("key:secret-key")
    assert not refused.value.hung
    assert refused.value.__cause__ is error
    assert "request refused" in caplog.text
    assert "secret-key" not in caplog.text


@pytest.mark.parametrize("fail_open", [True, False])
async def test_a_redis_timeout_is_refused_in_either_mode(fail_open: bool) -> None:
    counter = FakeCounter()
    counter.error = StorageTimedOut("Timeout reading from socket")
    with pytest.raises(LimiterUnavailable, match="Timeout reading") as refused:
        await limiter(counter, fail_open=fail_open).hit("addr:x")
    assert refused.value.hung


@pytest.mark.parametrize("fail_open", [True, False])
async def test_a_hung_counter_is_refused_within_the_timeout(fail_open: bool) -> None:
    counter = FakeCounter()
    counter.delay = 5.0
    started = time.monotonic()
    with pytest.raises(LimiterUnavailable, match="Redis timed out") as refused:
        await limiter(counter, fail_open=fail_open).hit("addr:x")
    assert refused.value.hung
    assert time.monotonic() - started < 1.0


async def test_other_errors_are_not_the_limiters_to_hide() -> None:
    counter = FakeCounter()
    counter.error = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        await limiter(counter, fail_open=True).hit("addr:x")

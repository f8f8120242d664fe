"""The token bucket, on an injected clock: exact long-run rate, bounded bursts, no drift."""

from __future__ import annotations

import pytest

from ev_simulator.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_first_token_is_free_then_the_rate_applies() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=1.0, min_wait=0.0, clock=clock)
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(0.1)
    clock.sleep(0.1)
    assert bucket.take() == pytest.approx(0.1)


def test_long_run_rate_is_exact_despite_oversleeping() -> None:
    clock = FakeClock()
    bucket = TokenBucket(200.0, clock=clock)
    start = clock.now
    for _ in range(10_000):
        wait = bucket.take()
        if wait:
            clock.sleep(wait * 1.3 + 0.0005)  # a sloppy OS: oversleeps every time
    elapsed = clock.now - start
    assert 10_000 / elapsed == pytest.approx(200.0, rel=0.01)


def test_short_waits_are_batched_into_longer_ones() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10_000.0, burst=1.0, min_wait=0.002, clock=clock)
    waits = []
    for _ in range(1000):
        waits.append(bucket.take())
        clock.sleep(waits[-1])
    slept = [wait for wait in waits if wait]
    assert 45 <= len(slept) <= 50  # one wait per 20 tokens of debt, not one per token
    assert all(wait >= 0.002 for wait in slept)
    assert clock.now - 1000.0 == pytest.approx(0.1, abs=0.003)


def test_idle_time_saves_at_most_a_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100.0, burst=5.0, min_wait=0.0, clock=clock)
    clock.sleep(60.0)  # a minute idle does not allow 6000 messages at once
    assert bucket.tokens == 5.0
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() == pytest.approx(0.01)


def test_default_burst_is_a_tenth_of_a_second() -> None:
    assert TokenBucket(1000.0).burst == 100.0
    assert TokenBucket(2.0).burst == 1.0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, None), (10.0, 0.5)])
def test_rejects_nonsense(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst=burst)

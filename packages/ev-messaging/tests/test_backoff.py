from __future__ import annotations

from ev_messaging.backoff import Backoff


def test_delays_grow_to_the_cap_with_jitter_and_reset() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    assert all(step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_many_attempts_do_not_overflow() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, attempts=10_000)
    assert backoff.next_delay() <= 30.0

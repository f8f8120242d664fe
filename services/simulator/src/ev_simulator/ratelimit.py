"""A token bucket on a monotonic clock: a steady publishing rate that does not drift.

Tokens accrue from the time actually elapsed, never from the time a sleep was meant to take, so
oversleeping is paid back by the following calls and the long-run rate stays exact. Taking a
token may leave the bucket in debt; the caller then waits until the debt is repaid, but only once
it exceeds ``min_wait`` (sleeping for microseconds would cost more than it saves).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up while the caller was busy."""

    __slots__ = ("_clock", "_tokens", "_updated", "burst", "min_wait", "rate")

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        min_wait: float = 0.002,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # By default a tenth of a second's worth (at least one token): smooth but not jittery.
        self.burst = max(1.0, rate / 10.0) if burst is None else burst
        if self.burst < 1.0:
            raise ValueError("burst must be at least one token")
        self.min_wait = min_wait
        self._clock = clock
        self._tokens = 1.0  # the first token is there at once: no initial wait
        self._updated = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return self._tokens

    @property
    def tokens(self) -> float:
        """The tokens available now; negative while in debt."""
        return self._refill()

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens now; how many seconds the caller should wait before going on.

        The answer is 0 until the debt is worth ``min_wait``; then it is the time until the
        bucket is back to zero. The caller may wait less (it is woken, say) or more (the OS
        oversleeps): the bucket only ever counts the time that really passed.
        """
        tokens = self._refill() - n
        self._tokens = tokens
        if tokens >= 0.0:
            return 0.0
        wait = -tokens / self.rate
        return wait if wait >= self.min_wait else 0.0

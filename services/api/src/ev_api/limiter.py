"""The rate limit's policy: requests per client per minute, and what a failing Redis means.

Free of the web framework and of redis-py. The counting is ev-storage's
:class:`~ev_storage.RateCounter`: a fixed window per client, kept in Redis so that every API
replica shares it, and started by the client's first request, so replicas need no synchronised
clocks. The REST dependency (:func:`ev_api.deps.enforce_rate_limit`) and the WebSocket route
apply the decision.

A client is counted by its identity (``key:<api key>`` or ``addr:<address>``), of which only a hash
reaches Redis: the counter key is ``{prefix}ratelimit:<first 32 hex of its SHA-256>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass
from typing import NoReturn, Protocol

from ev_storage import (
    AsyncClient,
    KeyLayout,
    RateCounter,
    StorageError,
    StorageTimedOut,
    WindowCount,
)

log = logging.getLogger(__name__)

WINDOW_MS = 60_000
RATE_LIMITED = "rate limit exceeded"
LIMITER_UNAVAILABLE = "rate limiter unavailable"


class WindowCounter(Protocol):
    """What the limiter counts with: :class:`ev_storage.RateCounter` (or a stand-in in tests)."""

    async def hit(self, client_id: str) -> WindowCount: ...


class LimiterUnavailable(Exception):
    """Redis failed the limiter and the request must be refused: the limiter fails closed, or
    Redis hangs (``hung``), where the route's own read would only wait as long again."""

    def __init__(self, reason: str, *, hung: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hung = hung

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one request: allowed or not, and when the window resets."""

    allowed: bool
    count: int
    retry_after_s: int


def client_id(identity: str) -> str:
    """The name of a client's counter: a hash, so neither an API key nor raw input reaches Redis."""
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


class RateLimiter:
    """``limit`` requests per client per minute; ``fail_open`` decides what a Redis failure means.

    ``timeout`` bounds the whole check (retries included), so a hung Redis costs at most that;
    a hung Redis is refused in both modes, so a request waits for Redis once, not twice.
    """

    def __init__(
        self, counter: WindowCounter, *, limit: int, fail_open: bool, timeout: float
    ) -> None:
        self._counter = counter
        self.limit = limit
        self.fail_open = fail_open
        self._timeout = timeout

    @classmethod
    def on_redis(
        cls, client: AsyncClient, *, prefix: str, limit: int, fail_open: bool, timeout: float
    ) -> RateLimiter:
        """A limiter counting in one-minute windows in Redis, under the key prefix ``prefix``."""
        counter = RateCounter(client, KeyLayout(prefix), window_ms=WINDOW_MS)
        return cls(counter, limit=limit, fail_open=fail_open, timeout=timeout)

    async def hit(self, identity: str) -> Decision:
        """Count one request of ``identity``; :class:`LimiterUnavailable` if Redis fails and the
        limiter fails closed (failing open, the request is allowed and a warning logged), and
        whenever Redis does not answer in time: failing open would only send the request on to
        wait for the same hung Redis in the route (twice the time to its 503)."""
        try:
            async with asyncio.timeout(self._timeout):
                window = await self._counter.hit(client_id(identity))
        except (StorageTimedOut, TimeoutError) as exc:
            _refuse(str(exc) or "Redis timed out", exc, hung=True)
        except StorageError as exc:
            if not self.fail_open:
                _refuse(str(exc), exc, hung=False)
            log.warning("rate limiter: Redis failed (%s); request allowed (fail open)", exc)
            return Decision(allowed=True, count=0, retry_after_s=0)
        retry_after = max(1, math.ceil(window.ms_left / 1000))
        return Decision(
            allowed=window.hits <= self.limit, count=window.hits, retry_after_s=retry_after
        )


def _refuse(reason: str, cause: Exception, *, hung: bool) -> NoReturn:
    log.warning("rate limiter: Redis failed (%s); request refused", reason)
    raise LimiterUnavailable(reason, hung=hung) from cause

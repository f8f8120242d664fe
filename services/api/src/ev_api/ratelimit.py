"""Rate limiting per API key (or per client address when authentication is off), kept in Redis.

A fixed window per client: one Lua script per request increments the client's counter, starts the
window's expiry on the first hit, and returns the count and the milliseconds left. The counter lives
in Redis, so every API replica shares it. The window starts at a client's first request (not on
the wall clock's minute), so replicas need no synchronised clocks.

Counter keys are ``{prefix}ratelimit:<sha256 of the identity, 32 hex>``: never a raw API key and
never unchecked input. redis-py may re-run the script after a lost reply; a hit is then counted
twice, which errs on the strict side by one request and is accepted for a limiter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from redis import exceptions as redis_errors
from starlette.requests import HTTPConnection

from ev_api.auth import API_KEY_HEADER, API_KEY_QUERY
from ev_api.deps import SettingsDep
from ev_api.errors import STORAGE_UNAVAILABLE
from ev_storage import AsyncClient

log = logging.getLogger(__name__)

WINDOW_MS = 60_000
RATE_LIMITED = "rate limit exceeded"
LIMITER_UNAVAILABLE = "rate limiter unavailable"

# KEYS[1] the counter; ARGV[1] the window in ms. Returns {count, ms left in the window}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


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


def identity_key(prefix: str, identity: str) -> str:
    """The counter key of a client: hashed, so neither a key nor raw input ends up in Redis."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"{prefix}ratelimit:{digest}"


class RateLimiter:
    """``limit`` requests per client per minute; ``fail_open`` decides what a Redis failure means.

    ``timeout`` bounds the whole check (retries included), so a hung Redis costs at most that;
    a hung Redis is refused in both modes, so a request waits for Redis once, not twice.
    """

    def __init__(
        self, client: AsyncClient, *, prefix: str, limit: int, fail_open: bool, timeout: float
    ) -> None:
        self._script: Any = client.register_script(_HIT)
        self._prefix = prefix
        self.limit = limit
        self.fail_open = fail_open
        self._timeout = timeout

    async def hit(self, identity: str) -> Decision:
        """Count one request of ``identity``; :class:`LimiterUnavailable` if Redis fails and the
        limiter fails closed (failing open, the request is allowed and a warning logged), and
        whenever Redis does not answer in time: failing open would only send the request on to
        wait for the same hung Redis in the route (twice the time to its 503)."""
        key = identity_key(self._prefix, identity)
        try:
            async with asyncio.timeout(self._timeout):
                count, ttl_ms = await self._script(keys=[key], args=[WINDOW_MS])
        except (redis_errors.TimeoutError, TimeoutError) as exc:
            raise LimiterUnavailable(str(exc) or "Redis timed out", hung=True) from exc
        except (redis_errors.RedisError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            if self.fail_open:
                log.warning("rate limiter: Redis failed (%s); request allowed (fail open)", reason)
                return Decision(allowed=True, count=0, retry_after_s=0)
            raise LimiterUnavailable(reason) from exc
        retry_after = max(1, math.ceil(int(ttl_ms) / 1000))
        return Decision(
            allowed=int(count) <= self.limit, count=int(count), retry_after_s=retry_after
        )


def refusal(limiter: RateLimiter) -> str:
    """The ``detail`` of a 503 from the limiter: failing open, Redis being unavailable is what
    the route would have answered ("storage unavailable"); failing closed, the limiter's own."""
    return STORAGE_UNAVAILABLE if limiter.fail_open else LIMITER_UNAVAILABLE


def client_identity(connection: HTTPConnection, *, keyed: bool) -> str:
    """Whom to count: the API key when keys are configured (already checked), else the address.

    The two kinds are tagged so a key can never collide with an address.
    """
    if keyed:
        given = connection.headers.get(API_KEY_HEADER)
        if given is None:
            given = connection.query_params.get(API_KEY_QUERY, "")
        return f"key:{given}"
    host = connection.client.host if connection.client is not None else "unknown"
    return f"addr:{host}"


async def get_limiter(connection: HTTPConnection) -> RateLimiter | None:
    resources = getattr(connection.state, "resources", None)
    limiter = getattr(resources, "limiter", None)
    return limiter if isinstance(limiter, RateLimiter) else None


async def enforce_rate_limit(
    request: Request,
    settings: SettingsDep,
    limiter: Annotated[RateLimiter | None, Depends(get_limiter)],
) -> None:
    """429 with ``Retry-After`` once the client used up its requests of the current window;
    503 if Redis fails and the limiter fails closed. Runs after authentication."""
    if limiter is None:
        return
    try:
        decision = await limiter.hit(client_identity(request, keyed=settings.auth_enabled))
    except LimiterUnavailable as exc:
        log.warning("rate limiter: Redis failed (%s); request refused", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, refusal(limiter)) from None
    if not decision.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{RATE_LIMITED}: {limiter.limit} requests per minute; "
            f"retry after {decision.retry_after_s} s",
            headers={"Retry-After": str(decision.retry_after_s)},
        )

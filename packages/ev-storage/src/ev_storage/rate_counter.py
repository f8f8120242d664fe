"""Fixed-window request counters in Redis, shared by every process that uses the same keys.

One Lua call per hit increments the client's counter, starts the window's expiry on the first hit,
and returns the count and the milliseconds left. The window starts at a client's first hit (not on
the wall clock's minute), so processes need no synchronised clocks. redis-py may re-run the script
after a lost reply; a hit is then counted twice, which errs on the strict side by one and is
accepted for a rate limit.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ev_storage.clients import AsyncClient
from ev_storage.errors import InvalidArgument, connection_errors_translated
from ev_storage.keys import KeyLayout

# KEYS[1] the counter; ARGV[1] the window in ms. Returns {count, ms left in the window}. A counter
# found without an expiry gets one, so that no client can be locked out for good.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class WindowCount(NamedTuple):
    """A client's hits in the current window (the one just counted included), and the
    milliseconds until the window ends and the count starts again from zero."""

    hits: int
    ms_left: int


class RateCounter:
    """Counts each client's hits in fixed windows of ``window_ms``: the storage of a rate limiter.

    A client is named by a hash (see :meth:`KeyLayout.rate_counter`), so neither an API key nor
    unchecked input becomes a key. The counters live in Redis, so every process of a service
    shares them. The client is the caller's: this class neither connects nor closes it.
    """

    def __init__(self, client: AsyncClient, keys: KeyLayout, *, window_ms: int = 60_000) -> None:
        if window_ms < 1:
            raise InvalidArgument(f"window_ms must be at least 1, not {window_ms}")
        # redis-py's script objects are untyped callables; the reply is checked where parsed.
        self._script: Any = client.register_script(_HIT)
        self._keys = keys
        self.window_ms = window_ms

    async def hit(self, client_id: str) -> WindowCount:
        """Count one hit of ``client_id`` (32 hex digits): one script call.

        Raises :class:`~ev_storage.StorageTimedOut` when Redis does not answer in time,
        :class:`~ev_storage.StorageUnavailable` when it cannot serve now, another
        :class:`~ev_storage.StorageError` otherwise; :class:`~ev_storage.InvalidKey` for an
        id that is not a hash.
        """
        key = self._keys.rate_counter(client_id)
        with connection_errors_translated():
            hits, ms_left = await self._script(keys=[key], args=[self.window_ms])
        return WindowCount(int(hits), int(ms_left))

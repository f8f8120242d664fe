"""A live count of stored readings: the write script PUBLISHes each reading it newly stores, once.

Subscribing to the key prefix's live channels gives, without polling Redis, when each reading
was stored: enough to see a consumer work again after a fault (recovery time) and to prove that
no reading was announced, so stored, twice.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

#: A recovery is this many readings stored after a fault: more than a batch (see ``recovery``).
RECOVERY_READINGS = 600


class LiveCounter:
    """Counts ``<prefix>sensor:{*}:live`` messages from a background thread; use as a context
    manager. ``times`` are ``time.monotonic()`` values, in arrival order."""

    def __init__(self, redis_url: str, key_prefix: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self._pubsub: Any = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.psubscribe(f"{key_prefix}sensor:*:live")
        self.times: list[float] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True, name="live-counter")

    def __enter__(self) -> LiveCounter:
        # The subscription is confirmed before anything is published.
        self._pubsub.get_message(timeout=5)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self._client.close()

    @property
    def count(self) -> int:
        return len(self.times)

    def reached(self, count: int) -> Callable[[], bool]:
        """A condition for ``wait_until``: ``count`` readings stored."""
        return lambda: len(self.times) >= count

    def count_at(self, moment: float) -> int:
        """How many were stored by ``moment``."""
        return bisect.bisect_right(self.times, moment)

    def recovery(self, since: float, readings: int = RECOVERY_READINGS) -> float | None:
        """Seconds from ``since`` until ``readings`` more were stored, if they were.

        More than one batch (500): requests a hung Redis executes late, after the consumer gave
        up on them, are not the consumer working again.
        """
        times = self.times
        index = bisect.bisect_right(times, since) + readings - 1
        return times[index] - since if index < len(times) else None

    def _listen(self) -> None:
        try:
            while not self._stop.is_set():
                message = self._pubsub.get_message(timeout=0.1)
                if message is not None and message["type"] == "pmessage":
                    self.times.append(time.monotonic())
        except BaseException as exc:  # reported by the test, which would otherwise undercount
            self.error = exc

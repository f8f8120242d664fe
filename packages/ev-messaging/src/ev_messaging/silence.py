"""Giving up a connection the broker has gone silent on, within twice the heartbeat.

pika's heartbeat checker looks every ``heartbeat + 5`` seconds and gives up at the first look that
saw no byte since the previous one: after between ``heartbeat + 5`` and ``2 * (heartbeat + 5)``
seconds of silence (7-14 s for a 2 s heartbeat, 35-70 s for the default 30 s). On a link that
went half-open (a peer or a route gone without a reset: only silence), that is that long without
consuming. RabbitMQ sends a heartbeat frame every ``heartbeat / 2`` seconds on an idle
connection, so twice the heartbeat without a byte is four frames missed: the link is dead.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pika.exceptions

logger = logging.getLogger(__name__)

#: How many times per limit the watch looks: it notices within limit * (1 + 1 / LOOKS).
LOOKS = 8


class SilenceWatch:
    """Ends a connection's stream after ``factor`` heartbeats without a byte from the broker.

    It runs as a timer of the connection's own I/O loop, so it also fires while pika blocks in a
    call (a ``tx_commit`` waiting for a Commit-Ok that will not come), and ends the stream as
    pika's own checker does: the call raises ``AMQPHeartbeatTimeout``. It reaches into pika's
    connection (``bytes_received``, its I/O loop, ``_terminate_stream``, all that checker uses);
    where a pika release changes them, the watch stays off (``armed`` says so) and pika's
    checker is left to notice.
    """

    def __init__(self, connection: Any, factor: float = 2.0) -> None:
        # A BlockingConnection wraps the asynchronous connection that does the work.
        self._impl: Any = getattr(connection, "_impl", connection)
        heartbeat = getattr(getattr(self._impl, "params", None), "heartbeat", None)
        # The negotiated heartbeat once the connection is open; 0: none, nothing to watch.
        self.heartbeat: float = heartbeat if isinstance(heartbeat, int | float) else 0
        self.limit = factor * self.heartbeat
        self._timer: Any = None
        self._seen = -1
        self._since = time.monotonic()
        usable = all(
            hasattr(self._impl, name) for name in ("bytes_received", "ioloop", "_terminate_stream")
        )
        if self.heartbeat > 0 and usable:
            self._schedule()
        elif self.heartbeat > 0:
            logger.debug("pika's connection has changed: leaving silent links to its heartbeat")

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def stop(self) -> None:
        """Stop watching (before the connection is closed or dropped)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            self._impl.ioloop.remove_timeout(timer)

    def _schedule(self) -> None:
        self._timer = self._impl.ioloop.call_later(self.limit / LOOKS, self._look)

    def _look(self) -> None:
        self._timer = None
        impl = self._impl
        if impl.is_closing or impl.is_closed:
            return
        now = time.monotonic()
        received = impl.bytes_received
        if received != self._seen:
            self._seen, self._since = received, now
        elif now - self._since >= self.limit:
            text = (
                f"no byte from the broker for {now - self._since:.1f} s "
                f"(heartbeat {self.heartbeat:g} s): the link is dead"
            )
            logger.warning("%s; giving it up", text)
            impl._terminate_stream(pika.exceptions.AMQPHeartbeatTimeout(text))
            return
        self._schedule()

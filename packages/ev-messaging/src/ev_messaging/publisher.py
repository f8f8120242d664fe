"""A persistent, mandatory publisher with pipelined confirms that survives connection loss.

Up to ``max_in_flight`` messages are sent before their confirms arrive; each is kept until the
broker acks it. When the connection drops, the unconfirmed ones are sent again on the next one
(at-least-once: the consumer side is idempotent). Everything runs in the calling thread: a call
does the I/O it needs, so an idle process should call :meth:`Publisher.sleep` rather than
``time.sleep`` to keep heartbeats and confirms flowing. Calls are serialised by a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import pika
import pika.exceptions

from ev_messaging.backoff import Backoff
from ev_messaging.confirms import Confirms, Outgoing
from ev_messaging.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConfirmTimeout,
    MessagingError,
    PublishNacked,
    from_pika,
)
from ev_messaging.link import Link, connect
from ev_messaging.settings import AmqpSettings
from ev_messaging.topology import EXCHANGE, TopologySettings

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
#: Messages handed to pika before its I/O loop runs and writes them out in one system call...
WRITE_BATCH = 64
#: ... or seconds since it last ran, whichever comes first (a bound on the added latency).
WRITE_DELAY_S = 0.001


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """Counters since the publisher was created. ``confirmed`` counts messages acked and routed;
    ``returned`` and ``nacked`` count failures; ``republished`` counts resends after a reconnect."""

    published: int
    confirmed: int
    returned: int
    nacked: int
    republished: int
    reconnects: int
    in_flight: int


class Publisher:
    """Publishes to RabbitMQ with pipelined publisher confirms; use as a context manager.

    A message the broker cannot route (:class:`Unroutable`) is reported once, by the next
    ``publish`` or ``flush`` call after its confirm arrived (the exception's fields name it). A
    message the broker nacks is sent again, on a new channel after a backoff delay, up to
    ``nack_retries`` times before it is reported as :class:`PublishNacked`: a quorum queue
    whose leader's node died nacks until a new leader is elected, and RabbitMQ 3.10 goes on
    nacking on a channel that first published to it meanwhile, until the channel is closed.
    ``topology``, when given, is declared on every connect.
    ``connect_timeout`` bounds how long a call keeps trying to (re)connect before it raises
    :class:`BrokerUnavailable`; messages already accepted are kept and sent on a later call.
    """

    def __init__(
        self,
        settings: AmqpSettings,
        *,
        max_in_flight: int = 1000,
        topology: TopologySettings | None = None,
        connect_timeout: float = 30.0,
        nack_retries: int = 5,
    ) -> None:
        if max_in_flight < 1:
            raise MessagingError("max_in_flight must be >= 1")
        if nack_retries < 0:
            raise MessagingError("nack_retries must be >= 0")
        self._settings = settings
        self._max_in_flight = max_in_flight
        self._topology = topology
        self._connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._link: Link | None = None
        self._closed = False
        self._outbox: deque[Outgoing] = deque()  # accepted, not yet sent on the current link
        # Sent on the current link, awaiting their confirm (or nacked, to be sent again).
        self._confirms = Confirms(nack_retries)
        self._backoff = Backoff(settings.retry_delay, settings.max_retry_delay)
        self._published = self._republished = self._reconnects = 0
        # Messages handed to pika since the I/O loop last ran, and when it last ran: writes are
        # gathered into one system call per WRITE_BATCH messages or WRITE_DELAY_S.
        self._unwritten, self._written_at = 0, time.monotonic()
        self._ever_connected = False

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()

    @property
    def stats(self) -> PublisherStats:
        """A snapshot of the counters."""
        with self._lock:
            confirms = self._confirms
            return PublisherStats(
                published=self._published,
                confirmed=confirms.confirmed,
                returned=confirms.returned,
                nacked=confirms.nacked,
                republished=self._republished,
                reconnects=self._reconnects,
                in_flight=self._in_flight(),
            )

    def connect(self) -> None:
        """Connect now rather than on the first publish (fail fast on bad settings)."""
        with self._lock:
            self._check_open()
            self._ensure_link()

    def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
        exchange: str = EXCHANGE,
    ) -> None:
        """Send one persistent JSON message (confirmed later, see :meth:`flush`).

        The message is written to the socket by this call or, to write many messages with few
        system calls, by the next call of this publisher (``publish``, ``flush``, ``sleep`` or
        ``close``) once :data:`WRITE_BATCH` messages or :data:`WRITE_DELAY_S` have gone by:
        publish in a loop, and end with ``flush`` (the context manager does). Blocks while
        ``max_in_flight`` messages await their confirm. An exception may concern an
        earlier message (see its fields) unless it is :class:`BrokerUnavailable` or
        :class:`AuthenticationFailed`, which mean this message was not accepted.
        """
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type=CONTENT_TYPE,
            message_id=message_id,
            headers=dict(headers) if headers else None,
        )
        message = Outgoing(exchange, routing_key, bytes(body), properties)
        with self._lock:
            self._check_open()
            self._outbox.append(message)
            try:
                self._run(lambda: message not in self._outbox, deadline=None)
            except (BrokerUnavailable, AuthenticationFailed):
                if message in self._outbox:
                    self._outbox.remove(message)
                raise
            self._published += 1
            self._unwritten += 1
            if (
                self._unwritten >= WRITE_BATCH
                or time.monotonic() - self._written_at >= WRITE_DELAY_S
            ):
                self._pump(0)
            self._raise_failure()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every accepted message is confirmed; then report any failure.

        Raises :class:`ConfirmTimeout` if ``timeout`` seconds pass first.
        """
        with self._lock:
            self._check_open()
            deadline = None if timeout is None else time.monotonic() + timeout
            if not self._run(lambda: not self._in_flight(), deadline):
                raise ConfirmTimeout(self._in_flight(), timeout or 0.0)
            self._raise_failure()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` while serving the connection (heartbeats, confirms, resends)."""
        with self._lock:
            self._check_open()
            self._run(lambda: False, time.monotonic() + seconds)

    def close(self) -> None:
        """Close the connection; messages still unconfirmed are dropped (and logged)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            left = self._in_flight()
            if left:
                logger.warning("publisher closed with %d unconfirmed message(s)", left)
            if self._link is not None:
                self._link.close()
                self._link = None

    # internals: every one runs under the lock

    def _in_flight(self) -> int:
        return len(self._outbox) + len(self._confirms)

    def _check_open(self) -> None:
        if self._closed:
            raise MessagingError("publisher is closed")

    def _raise_failure(self) -> None:
        if self._confirms.failures:
            raise self._confirms.failures.popleft()

    def _run(self, done: Callable[[], bool], deadline: float | None) -> bool:
        """Send what the window allows and process I/O until ``done()`` or the deadline."""
        while True:
            link = self._link
            if self._in_flight():
                self._ensure_link()
                self._send_outbox()
            elif link is not None and not link.usable:
                self._drop_link(link)  # nothing to resend: reconnect lazily, on the next publish
            if done():
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if self._link is None:
                time.sleep(min(remaining or 0.0, 0.2))
            else:
                self._pump(1.0 if remaining is None else min(remaining, 1.0))

    def _pump(self, timeout: float) -> None:
        if self._link is not None and self._link.lost is None:
            self._unwritten, self._written_at = 0, time.monotonic()
            self._link.pump(timeout)

    def _send_outbox(self) -> None:
        link = self._link
        assert link is not None
        while self._outbox and len(self._confirms) < self._max_in_flight and link.usable:
            message = self._outbox[0]
            try:
                deadline = time.monotonic() + self._connect_timeout
                if not link.exchange_exists(message.exchange, deadline):
                    self._outbox.popleft()
                    self._confirms.failures.append(message.unroutable("exchange not found"))
                    continue
                tag = link.publish(
                    message.exchange, message.routing_key, message.body, message.properties
                )
            except (pika.exceptions.AMQPError, BrokerUnavailable) as exc:
                link.lost = link.lost or exc  # resent on the next link
                return
            self._confirms.sent(tag, self._outbox.popleft())
            if message.sends:
                self._republished += 1
            message.sends += 1

    def _ensure_link(self) -> None:
        """A usable link, reconnecting with backoff until ``connect_timeout`` runs out."""
        link = self._link
        if link is not None and link.usable:
            return
        if link is not None:
            self._drop_link(link)
            if isinstance(link.lost, PublishNacked):
                delay = self._backoff.next_delay()
                logger.warning("broker nacked; sending again on a new channel in %.1fs", delay)
                time.sleep(delay)
        deadline = time.monotonic() + self._connect_timeout
        while True:
            try:
                on_return = self._confirms.on_return
                self._link = connect(
                    self._settings, self._topology, self._on_confirm, on_return, deadline
                )
            except BrokerUnavailable as exc:
                delay = self._backoff.next_delay()
                if time.monotonic() + delay >= deadline:
                    raise BrokerUnavailable(
                        f"no broker reachable within {self._connect_timeout:g}s: {exc}"
                    ) from exc
                logger.warning("broker unavailable (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                continue
            if self._ever_connected:
                self._reconnects += 1
            self._ever_connected = True
            return

    def _drop_link(self, link: Link) -> None:
        """Forget a dead link; its unconfirmed messages go first in line for the next one."""
        reason = link.lost
        if isinstance(reason, pika.exceptions.ChannelClosed) and reason.reply_code == 403:
            raise from_pika(reason) from reason
        what = "left after a nack" if isinstance(reason, PublishNacked) else "lost"
        logger.warning(
            "connection to %s %s (%r); %d message(s) to resend",
            link.params.host,
            what,
            reason,
            len(self._confirms),
        )
        link.close()
        self._link = None
        self._outbox.extendleft(reversed(self._confirms.take_unconfirmed()))

    def _on_confirm(self, tag: int, multiple: bool, acked: bool) -> None:
        settled = self._confirms.on_confirm(tag, multiple, acked)
        if settled and acked:
            self._backoff.reset()  # the broker works again: the next outage starts afresh
        link = self._link
        if self._confirms.retries and link is not None and link.lost is None:
            first = self._confirms.retries[0]
            # Leave this channel: resent on it, the messages could be nacked again and again.
            link.lost = PublishNacked(
                first.routing_key, exchange=first.exchange, message_id=first.properties.message_id
            )

"""Queue depths: message and consumer counts of named queues, for metrics and operators.

The counts come from a passive ``queue.declare`` (which creates nothing) on a small connection of
the reader's own, opened through :func:`~ev_messaging.connect.connect_first` like every other
client of the broker. pika connections are not thread-safe: a reader belongs to one thread, and
never shares the connection of a consumer or publisher.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ev_messaging.connect import connect_first
from ev_messaging.errors import _CONNECT_ERRORS, QueueUnavailable, from_pika
from ev_messaging.settings import AmqpSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueDepth:
    """One queue's counts when the broker was asked: ``messages`` ready for delivery (not those
    delivered and awaiting an ack), ``consumers`` subscribed."""

    queue: str
    messages: int
    consumers: int


class QueueDepths:
    """Reads :class:`QueueDepth` of queues by name, connecting on first use and again after a
    lost connection.

    ``client_name`` and ``log`` name the reader in the "connected to" line of
    :func:`~ev_messaging.connect.connect_first` (a service's log says which of its clients moved
    to which node). Only :class:`~ev_messaging.MessagingError` is raised.
    """

    def __init__(
        self,
        settings: AmqpSettings,
        *,
        client_name: str = "queue-depth reader",
        log: logging.Logger = logger,
    ) -> None:
        self._settings = settings
        self._client_name = client_name
        self._log = log
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    @property
    def connected(self) -> bool:
        """Whether the reader holds an open connection (:meth:`serve` has something to serve)."""
        return self._connection is not None and self._connection.is_open

    def read(self, queue: str) -> QueueDepth:
        """``queue``'s counts now, connecting first if needed.

        Raises :class:`~ev_messaging.QueueUnavailable` when the broker closes the channel over
        this queue (404: it does not exist); the next read opens another channel. Any other
        failure (:class:`~ev_messaging.BrokerUnavailable`, refused credentials, ...) drops the
        connection, which the next read opens again.
        """
        try:
            channel = self._open_channel()
            try:
                declared = channel.queue_declare(queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                # Over this queue only: the channel is gone, the connection stays.
                self._channel = None
                raise QueueUnavailable(queue, exc.reply_code, exc.reply_text) from exc
        except _CONNECT_ERRORS as exc:
            self.close()
            raise from_pika(exc) from exc
        return QueueDepth(queue, declared.method.message_count, declared.method.consumer_count)

    def serve(self, time_limit: float) -> bool:
        """Serve the connection (heartbeats, the broker's closes) for up to ``time_limit``
        seconds, as a pause between reads that keeps the connection alive; ``False`` at once
        when there is no open connection to serve.

        A connection lost meanwhile is dropped and raised as a
        :class:`~ev_messaging.MessagingError`; the next read connects again.
        """
        connection = self._connection
        if connection is None or not connection.is_open:
            return False
        try:
            connection.process_data_events(time_limit=time_limit)
        except _CONNECT_ERRORS as exc:
            self.close()
            raise from_pika(exc) from exc
        return True

    def close(self) -> None:
        """Close the connection, if any (quietly: it may be gone already)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*_CONNECT_ERRORS):
                connection.close()

    def __enter__(self) -> QueueDepths:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open_channel(self) -> BlockingChannel:
        if self._connection is None or not self._connection.is_open:
            connection, _index = connect_first(
                self._settings, BlockingConnection, client_name=self._client_name, log=self._log
            )
            self._connection = connection
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
        return self._channel

"""Queue depths for the metrics: a thread polling the broker on a small connection of its own.

pika connections are not thread-safe, so the poller never touches the consuming connection; it
opens its own and asks for each queue's counts with a passive ``queue.declare`` every few seconds.
Between polls it serves that connection (heartbeats) rather than sleeping.

A queue the broker does not know (404) before the poller has ever seen it is "not declared yet"
(at start-up the poller may run before the consumer has declared the topology): DEBUG. One that
existed and is gone is a WARNING, once until it is back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ev_consumer.metrics import ConsumerMetrics
from ev_messaging import AmqpSettings, MessagingError
from ev_messaging.connect import connect_first
from ev_messaging.errors import CONNECT_ERRORS, NoBrokerAnswered, from_pika

log = logging.getLogger(__name__)

_NOT_FOUND = 404

#: Longest single wait, so that stop() is seen promptly.
_TICK = 0.5
#: How long stop() waits for the thread (it may be inside a connect; it is a daemon).
_JOIN_TIMEOUT = 2.0


class QueuePoller:
    """Sets ``ev_queue_messages_ready`` and ``ev_queue_consumers`` for ``queues`` every
    ``interval`` seconds, and ``ev_consumer_queue_poll_up`` to whether the broker answered."""

    def __init__(
        self,
        amqp: AmqpSettings,
        queues: Sequence[str],
        metrics: ConsumerMetrics,
        *,
        interval: float,
    ) -> None:
        self._amqp = amqp
        self._queues = tuple(queues)
        self._metrics = metrics
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._shown: set[str] = set()
        self._seen: set[str] = set()  # queues the broker has ever answered for
        self._missing: set[str] = set()  # seen queues now missing, already reported
        self._failing = False

    def poll(self) -> None:
        """Read every queue's counts once, connecting first if needed."""
        try:
            channel = self._open_channel()
            for queue in self._queues:
                channel = self._poll_queue(channel, queue)
        except (MessagingError, *CONNECT_ERRORS) as exc:  # reported here, once per outage
            self._metrics.broker_up.set(0)
            self._forget_all()
            self._drop()
            if not self._failing:
                log.warning("queue depths unavailable: %s", describe(exc))
            self._failing = True
            return
        self._metrics.broker_up.set(1)
        if self._failing:
            log.info("queue depths available again")
        self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ev-consumer-queues", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and close the connection (the thread closes its own)."""
        self._stop.set()
        if self._thread is None:
            self._drop()
        else:
            self._thread.join(timeout=_JOIN_TIMEOUT)

    @contextlib.contextmanager
    def running(self) -> Iterator[QueuePoller]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.poll()
                self._pause(self._interval)
        finally:
            self._drop()

    def _open_channel(self) -> BlockingChannel:
        if self._connection is None or not self._connection.is_open:
            connection, _index = connect_first(
                self._amqp, BlockingConnection, client_name="queue-depth poller", log=log
            )
            self._connection = connection
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
        return self._channel

    def _poll_queue(self, channel: BlockingChannel, queue: str) -> BlockingChannel:
        try:
            declared = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            # The broker closed the channel (the queue does not exist, or may not be read).
            self._forget(queue)
            self._report_missing(queue, exc)
            return self._open_channel()
        self._metrics.queue_ready.labels(queue).set(declared.method.message_count)
        self._metrics.queue_consumers.labels(queue).set(declared.method.consumer_count)
        self._shown.add(queue)
        self._seen.add(queue)
        self._missing.discard(queue)
        return channel

    def _report_missing(self, queue: str, exc: pika.exceptions.ChannelClosedByBroker) -> None:
        if exc.reply_code == _NOT_FOUND and queue not in self._seen:
            log.debug("queue %s not declared yet", queue)
        elif queue not in self._missing:
            self._missing.add(queue)
            log.warning("queue %s unavailable: %s %s", queue, exc.reply_code, exc.reply_text)

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            connection = self._connection
            if connection is None:
                self._stop.wait(min(remaining, _TICK))
                continue
            try:
                connection.process_data_events(time_limit=min(remaining, _TICK))
            except CONNECT_ERRORS:
                self._drop()  # the next poll reconnects and reports

    def _forget(self, queue: str) -> None:
        """No stale depth for a queue that could not be read."""
        if queue in self._shown:
            self._metrics.queue_ready.remove(queue)
            self._metrics.queue_consumers.remove(queue)
            self._shown.discard(queue)

    def _forget_all(self) -> None:
        for queue in tuple(self._shown):
            self._forget(queue)

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*CONNECT_ERRORS):
                connection.close()


def describe(exc: BaseException) -> str:
    """Why the broker could not be read, never empty: pika's connection errors often have no
    message of their own (``str()`` is ``""``), so the translated error, else the class. When no
    node answered, each node's reason and URL."""
    if isinstance(exc, NoBrokerAnswered):
        return "; ".join(f"{error} (at {url})" for url, error in exc.attempts)
    text = str(from_pika(exc))
    return text if text else f"{type(exc).__name__}: {exc!r}"

"""The batch consumer runner: collect deliveries, hand them to a handler, move the invalid ones
aside, then acknowledge the batch with one ``basic.ack(multiple)``.

Acknowledging only after the handler returned makes processing at-least-once: a crash, a lost
connection or :meth:`BatchConsumer.stop` before the ack means the broker delivers again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ev_messaging.backoff import Backoff
from ev_messaging.delivery import (
    MAX_ERROR_LENGTH,
    BatchHandler,
    Delivery,
    Rejection,
    invalid_properties,
)
from ev_messaging.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    MessagingError,
    Retry,
    TopologyError,
    from_pika,
)
from ev_messaging.settings import AmqpSettings
from ev_messaging.topology import INVALID_QUEUE, TopologySettings, declare_topology

logger = logging.getLogger(__name__)

#: Longest single wait, so that a stop() without a wake-up (from a signal handler) is seen soon.
_TICK = 0.1


@dataclass(frozen=True, slots=True)
class ConsumerStats:
    """Counters since the consumer was created."""

    consumed: int = 0  # deliveries received
    acked_batches: int = 0
    acked: int = 0  # deliveries acknowledged
    rejected: int = 0  # moved to the invalid queue
    retries: int = 0  # batches handed again after Retry
    failed_batches: int = 0  # handler raised: nacked for redelivery
    reconnects: int = 0


_COUNTERS = tuple(f.name for f in fields(ConsumerStats))


class _ConsumerCancelled(MessagingError):
    """The broker cancelled a consumer (e.g. its queue was deleted): reconnect and redeclare."""


class BatchConsumer:
    """Consumes every type queue in batches and calls ``handler`` on each; ``run()`` blocks.

    A handler raising :class:`Retry` gets the same batch again after a capped backoff, without
    the runner taking more messages; any other exception requeues the batch (the queues'
    delivery limit moves a message that keeps failing to the invalid queue).
    """

    def __init__(
        self,
        settings: AmqpSettings,
        topology: TopologySettings,
        handler: BatchHandler,
        *,
        prefetch: int = 1000,
        batch_size: int = 500,
        batch_max_wait: float = 0.05,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        max_error_length: int = MAX_ERROR_LENGTH,
    ) -> None:
        if prefetch < 1 or batch_size < 1 or batch_max_wait < 0:
            raise MessagingError("need prefetch >= 1, batch_size >= 1 and batch_max_wait >= 0")
        self._settings = settings
        self._topology = topology
        self._handler = handler
        self._prefetch = prefetch
        self._batch_size = batch_size
        self._batch_max_wait = batch_max_wait
        self._retry_delay = (retry_delay, max_retry_delay)
        self._max_error_length = max_error_length
        self._stopping = False
        self._connection: BlockingConnection | None = None
        self._run_thread: threading.Thread | None = None
        self._buffer: list[Delivery] = []
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._cancelled_by_broker = False

    @property
    def stats(self) -> ConsumerStats:
        """A snapshot of the counters."""
        return ConsumerStats(**self._counts)

    def stop(self) -> None:
        """Ask ``run()`` to finish the batch in hand, ack it, close and return.

        Safe from any thread and from a signal handler: it only sets a flag, plus, from another
        thread, wakes the connection (a signal handler runs in the consuming thread itself).
        """
        self._stopping = True
        connection = self._connection
        if connection is not None and threading.current_thread() is not self._run_thread:
            # Already closed: run() sees the flag anyway.
            with contextlib.suppress(pika.exceptions.AMQPError):
                connection.add_callback_threadsafe(lambda: None)

    def run(self) -> None:
        """Consume until :meth:`stop`; reconnects on connection loss.

        Raises :class:`AuthenticationFailed` when refused and :class:`TopologyError` when the
        queues exist with other arguments; both need a human.
        """
        self._run_thread = threading.current_thread()
        backoff = Backoff(self._settings.retry_delay, self._settings.max_retry_delay)
        connected_before = False
        while not self._stopping:
            try:
                self._connection = self._connect()
            except BrokerUnavailable as exc:
                delay = backoff.next_delay()
                logger.warning("broker unavailable (%s); retrying in %.1fs", exc, delay)
                self._wait(delay, None)
                continue
            if connected_before:
                self._counts["reconnects"] += 1
            connected_before = True
            try:
                self._consume(self._connection, backoff.reset)
            except (pika.exceptions.AMQPError, OSError, MessagingError) as exc:
                error = from_pika(exc)
                if isinstance(error, AuthenticationFailed | TopologyError):
                    if error is exc:
                        raise
                    raise error from exc
                # The unacked batch is dropped: its tags died with the channel, and the broker
                # delivers the messages again.
                logger.warning("consuming interrupted (%s); reconnecting", error)
                self._wait(backoff.next_delay(), None)
            finally:
                self._close()
        logger.info("consumer stopped")

    def _connect(self) -> BlockingConnection:
        try:
            connection = pika.BlockingConnection(self._settings.parameters())
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise from_pika(exc) from exc
        logger.info("consumer connected (%s)", ", ".join(self._settings.safe_urls))
        return connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        self._buffer.clear()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except pika.exceptions.AMQPError as exc:
                logger.debug("closing the consumer connection: %r", exc)

    def _consume(self, connection: BlockingConnection, on_success: Callable[[], None]) -> None:
        channel = connection.channel()
        declare_topology(channel, self._topology)
        # Bound the unacked deliveries the broker pushes to us (memory, fairness between
        # consumers). Quorum queues do not support global QoS, so the limit is per consumer.
        channel.basic_qos(prefetch_count=self._prefetch)
        # Republishing rejected messages waits for the broker's confirm before the batch is acked.
        channel.confirm_delivery()
        channel.add_on_cancel_callback(self._on_cancelled_by_broker)
        self._cancelled_by_broker = False
        tags = [channel.basic_consume(queue, self._on_message) for queue in self._topology.queues]
        first_at = 0.0
        while True:
            if self._cancelled_by_broker:
                raise _ConsumerCancelled("the broker cancelled a consumer")
            if self._stopping:
                for tag in tags:  # no new deliveries; the undispatched ones are requeued
                    channel.basic_cancel(tag)
                while self._buffer:  # finish what is already in hand
                    self._handle(connection, channel)
                return
            if not self._buffer:
                connection.process_data_events(time_limit=_TICK)
                first_at = time.monotonic()
                continue
            deadline = first_at + self._batch_max_wait
            while len(self._buffer) < self._batch_size and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                connection.process_data_events(time_limit=min(remaining, _TICK))
            if self._handle(connection, channel):
                on_success()
            first_at = time.monotonic()

    def _on_cancelled_by_broker(self, _frame: Any) -> None:
        self._cancelled_by_broker = True

    def _on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._buffer.append(Delivery.from_pika(method, properties, body))
        self._counts["consumed"] += 1

    def _handle(self, connection: BlockingConnection, channel: BlockingChannel) -> bool:
        """Run the handler on the oldest deliveries in hand; ack or nack them. True on success."""
        # Deliveries arrive in tag order, so the first batch_size ones are exactly the tags up
        # to the last: one ack with multiple=True covers them and nothing else.
        batch = self._buffer[: self._batch_size]
        del self._buffer[: self._batch_size]
        last_tag = batch[-1].delivery_tag
        backoff = Backoff(*self._retry_delay)
        while True:
            try:
                rejections = self._handler(batch)
            except Retry as exc:
                delay = backoff.next_delay()
                logger.warning("batch of %d: %s; retrying in %.2fs", len(batch), exc, delay)
                self._counts["retries"] += 1
                if self._wait(delay, connection):
                    continue
                # stop() meanwhile: give up without acking, the broker redelivers after close.
                self._buffer.clear()
                return False
            except Exception:
                logger.exception("batch of %d failed; requeued for redelivery", len(batch))
                channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
                self._counts["failed_batches"] += 1
                return False
            try:
                for rejection in rejections:
                    self._move_to_invalid(channel, rejection)
            except MessagingError:
                logger.exception("moving rejections aside failed; batch requeued")
                channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
                self._counts["failed_batches"] += 1
                return False
            channel.basic_ack(delivery_tag=last_tag, multiple=True)
            self._counts["acked_batches"] += 1
            self._counts["acked"] += len(batch)
            self._counts["rejected"] += len(rejections)
            return True

    def _move_to_invalid(self, channel: BlockingChannel, rejection: Rejection) -> None:
        properties = invalid_properties(rejection, self._max_error_length)
        try:
            channel.basic_publish(
                "", INVALID_QUEUE, rejection.delivery.body, properties, mandatory=True
            )
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise MessagingError(f"could not move a message to {INVALID_QUEUE}: {exc!r}") from exc

    def _wait(self, seconds: float, connection: BlockingConnection | None) -> bool:
        """Wait, serving ``connection`` if any; False if stop() was called meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if connection is None:
                time.sleep(min(remaining, _TICK))
            else:
                connection.process_data_events(time_limit=min(remaining, _TICK))
        return False

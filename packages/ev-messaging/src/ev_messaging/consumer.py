"""The batch consumer runner: collect deliveries, hand them to a handler, move the invalid ones
aside, then acknowledge the batch with one ``basic.ack(multiple)``.

Acknowledging only after the handler returned makes processing at-least-once: a crash, a lost
connection or :meth:`BatchConsumer.stop` before the ack means the broker delivers again. The
invalid messages of a batch are published and the batch acknowledged in one AMQP transaction, so
a crash never leaves a message both moved aside and still queued: each lands in the invalid queue
once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from ev_messaging.backoff import Backoff
from ev_messaging.connect import connect_first
from ev_messaging.delivery import MAX_ERROR_LENGTH, BatchHandler, Delivery, Rejection
from ev_messaging.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    Fatal,
    MessagingError,
    Retry,
    TopologyError,
    from_pika,
)
from ev_messaging.inbox import Inbox
from ev_messaging.settings import AmqpSettings
from ev_messaging.silence import SilenceWatch
from ev_messaging.topology import TopologySettings, declare_topology

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
    failed_batches: int = 0  # handler calls that raised (not Retry)
    requeued: int = 0  # deliveries given back after failing on their own
    reconnects: int = 0


_COUNTERS = tuple(f.name for f in fields(ConsumerStats))


def _wake(connection: BlockingConnection) -> None:
    """End the connection's current wait, from any thread (unless it is closed already)."""
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection.add_callback_threadsafe(_nothing)


def _nothing() -> None:
    pass


class _ConsumerCancelled(MessagingError):
    """The broker cancelled a consumer (e.g. its queue was deleted): reconnect and redeclare."""


class _Stopped(Exception):
    """stop() was called while a batch waited to be retried."""


class _Failed(Exception):
    """The handler raised something other than Retry or Fatal (logged where it happened)."""


class BatchConsumer:
    """Consumes every type queue in batches and calls ``handler`` on each; ``run()`` blocks.

    A handler raising :class:`Retry` gets the same batch again after a capped backoff, without
    the runner taking more messages than the prefetch window. :class:`Fatal` stops the runner.
    Any other exception has the batch handled again one delivery at a time, and requeues those
    that fail on their own (the queues' delivery limit moves a message that keeps failing to the
    invalid queue). ``stop_grace`` bounds how long :meth:`stop` keeps handling what was received.
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
        stop_grace: float = 3.0,
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
        self._stop_grace = stop_grace
        self._stopped_at = 0.0
        self._connection: BlockingConnection | None = None
        self._run_thread: threading.Thread | None = None
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._cancelled_by_broker = False
        self._active_at = time.monotonic()
        self._worker: ThreadPoolExecutor | None = None

    @property
    def stats(self) -> ConsumerStats:
        """A snapshot of the counters."""
        return ConsumerStats(**self._counts)

    @property
    def active_at(self) -> float:
        """``time.monotonic()`` when the run loop last went round (consuming, retrying or
        waiting for the broker): a liveness signal, stale only when the loop is stuck."""
        return self._active_at

    def stop(self) -> None:
        """Ask ``run()`` to finish the batch in hand, ack it, close and return.

        Deliveries already received are handled too for up to ``stop_grace`` seconds (a
        prompt exit beats sparing the broker some redeliveries); the rest are requeued.

        Safe from any thread and from a signal handler: it only sets a flag, plus, from another
        thread, wakes the connection (a signal handler runs in the consuming thread itself).
        """
        if not self._stopping:
            self._stopped_at = time.monotonic()
        self._stopping = True
        connection = self._connection
        if connection is not None and threading.current_thread() is not self._run_thread:
            # Already closed: run() sees the flag anyway.
            _wake(connection)

    def run(self) -> None:
        """Consume until :meth:`stop`; reconnects on connection loss.

        Raises :class:`AuthenticationFailed` when refused, :class:`TlsVerificationFailed` when
        the broker's certificate does not verify, :class:`TopologyError` when the queues exist
        with other arguments, and the handler's :class:`Fatal`; all need a human.
        """
        self._run_thread = threading.current_thread()
        try:
            self._run()
        finally:
            if self._worker is not None:
                # A handler still running was cut off by a lost connection or an error: its
                # batch is redelivered. Wait for it, so nobody closes its client under it.
                self._worker.shutdown(wait=True)
                self._worker = None
        logger.info("consumer stopped")

    def _run(self) -> None:
        backoff = Backoff(self._settings.retry_delay, self._settings.max_retry_delay)
        connected_before = False
        first = 0  # the URL tried first
        outage_since: float | None = None  # one WARNING per outage; the retries at INFO
        while not self._stopping:
            try:
                self._connection, connected_to = self._connect(first)
            except BrokerUnavailable as exc:
                delay = backoff.next_delay()
                level = logging.WARNING if outage_since is None else logging.INFO
                outage_since = outage_since or time.monotonic()
                logger.log(level, "broker unavailable (%s); retrying in %.1fs", exc, delay)
                self._wait(delay, None)
                continue
            if outage_since is not None:
                logger.info("broker back after %.1fs", time.monotonic() - outage_since)
                outage_since = None
            if connected_before:
                self._counts["reconnects"] += 1
            connected_before = True
            # Once this link is lost, the next node is tried first: the lost one may be the
            # problem, and a silent one costs a handshake timeout (15 s) at every reconnect.
            first = (connected_to + 1) % len(self._settings.urls)
            # A link gone silent (half-open) is given up within two heartbeats, also while a
            # blocking call waits on it, rather than pika's heartbeat + 5 to twice that.
            silence = SilenceWatch(self._connection)
            try:
                self._consume(self._connection, backoff.reset)
            except (pika.exceptions.AMQPError, OSError, MessagingError) as exc:
                error = from_pika(exc)
                if isinstance(error, AuthenticationFailed | TopologyError | Fatal):
                    if error is exc:
                        raise
                    raise error from exc
                # The deliveries in hand are dropped with their inbox: their tags died with the
                # channel, and the broker delivers the messages again.
                logger.warning("consuming interrupted (%s); reconnecting", error)
                outage_since = time.monotonic()
                self._wait(backoff.next_delay(), None)
            finally:
                silence.stop()
                self._close()

    def check_connection(self) -> None:
        """Connect to the first broker that answers and close again: a start-up check.

        Raises what :meth:`run` would raise at once (:class:`AuthenticationFailed`,
        :class:`TlsVerificationFailed`), or :class:`BrokerUnavailable` when no broker answers,
        which :meth:`run` would wait out.
        """
        connection, _ = self._connect()
        with contextlib.suppress(pika.exceptions.AMQPError):
            connection.close()

    def _connect(self, first: int = 0) -> tuple[BlockingConnection, int]:
        """A connection to the first URL that answers, in order from the ``first``-th (then
        round), and that URL's index; see :func:`~ev_messaging.connect.connect_first`."""
        return connect_first(
            self._settings, BlockingConnection, start=first, client_name="consumer", log=logger
        )

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except pika.exceptions.AMQPError as exc:
                logger.debug("closing the consumer connection: %r", exc)

    def _consume(self, connection: BlockingConnection, on_success: Callable[[], None]) -> None:
        channel = connection.channel()
        declare_topology(channel, self._topology)
        # Bound the unacked deliveries the broker pushes to us (memory, fairness between
        # consumers): while the handler retries, this is all that is held. Quorum queues do not
        # support global QoS, so the limit is per consumer.
        channel.basic_qos(prefetch_count=self._prefetch)
        inbox = Inbox(
            connection,
            channel,
            self._topology,
            max_error_length=self._max_error_length,
            on_delivery=self._on_delivery,
        )
        channel.add_on_cancel_callback(self._on_cancelled_by_broker)
        self._cancelled_by_broker = False
        tags = [channel.basic_consume(queue, inbox.on_message) for queue in self._topology.queues]
        first_at = 0.0
        while True:
            self._active_at = time.monotonic()
            if self._cancelled_by_broker:
                raise _ConsumerCancelled("the broker cancelled a consumer")
            if self._stopping:
                for tag in tags:  # no new deliveries; the undispatched ones are requeued
                    channel.basic_cancel(tag)
                # Finish what is in hand, for as long as a prompt exit allows; what is left goes
                # back to the queues when the channel closes.
                grace_ends = self._stopped_at + self._stop_grace
                while inbox.deliveries and time.monotonic() < grace_ends:
                    self._handle(connection, inbox)
                return
            if not inbox.deliveries:
                connection.process_data_events(time_limit=_TICK)
                first_at = time.monotonic()
                continue
            deadline = first_at + self._batch_max_wait
            while len(inbox.deliveries) < self._batch_size and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                connection.process_data_events(time_limit=min(remaining, _TICK))
            if self._handle(connection, inbox):
                on_success()
            first_at = time.monotonic()

    def _on_cancelled_by_broker(self, _frame: Any) -> None:
        self._cancelled_by_broker = True

    def _on_delivery(self) -> None:
        self._counts["consumed"] += 1

    def _handle(self, connection: BlockingConnection, inbox: Inbox) -> bool:
        """Run the handler on the oldest deliveries in hand and settle them. True on success."""
        batch = inbox.take(self._batch_size)
        try:
            rejections = self._call(connection, batch)
        except _Stopped:
            inbox.deliveries.clear()  # unacknowledged: the broker delivers them again
            return False
        except _Failed:
            if len(batch) == 1:
                self._give_back(inbox, batch[0])
                return False
            return self._isolate(connection, inbox, batch)
        self._settle(inbox, batch, rejections)
        return True

    def _isolate(self, connection: BlockingConnection, inbox: Inbox, batch: list[Delivery]) -> bool:
        """Handle a failed batch one delivery at a time: only those that fail again go back to
        their queue, towards its delivery limit; the others are not punished for sharing a batch
        with a poison message."""
        logger.warning("batch of %d failed; handling its deliveries one by one", len(batch))
        for delivery in batch:
            try:
                rejections = self._call(connection, [delivery])
            except _Stopped:
                inbox.deliveries.clear()
                return False
            except _Failed:
                self._give_back(inbox, delivery)
                continue
            self._settle(inbox, [delivery], rejections)
        return True

    def _call(self, connection: BlockingConnection, batch: list[Delivery]) -> Sequence[Rejection]:
        """The handler's rejections for ``batch``; after :class:`Retry`, the same batch again
        after a capped backoff, serving the connection meanwhile (heartbeats) but taking no more
        than the prefetch window."""
        backoff = Backoff(*self._retry_delay)
        while True:
            # Outside the try: the connection's own errors are not the handler's failures.
            done = self._handled_in_worker(connection, batch)
            try:
                return done.result()
            except Retry as exc:
                delay = backoff.next_delay()
                logger.warning("batch of %d: %s; retrying in %.2fs", len(batch), exc, delay)
                self._counts["retries"] += 1
                if not self._wait(delay, connection):
                    raise _Stopped from exc
            except Fatal:
                raise
            except Exception as exc:
                logger.exception("handling a batch of %d failed", len(batch))
                self._counts["failed_batches"] += 1
                raise _Failed from exc

    def _handled_in_worker(
        self, connection: BlockingConnection, batch: list[Delivery]
    ) -> Future[Sequence[Rejection]]:
        """``handler(batch)`` run on the worker thread, done; ``connection`` served meanwhile.

        The next deliveries arrive while the handler waits on its store: receiving overlaps
        with writing. Only this thread touches the connection (pika is not thread-safe); the
        worker wakes it when the handler is done. One worker: batches are handled in order.
        """
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ev-batch")
        future = self._worker.submit(self._handler, batch)
        future.add_done_callback(lambda _done: _wake(connection))
        # active_at is not refreshed here: a handler that hangs must age the liveness signal.
        while not future.done():
            connection.process_data_events(time_limit=_TICK)
        return future

    def _settle(self, inbox: Inbox, batch: list[Delivery], rejections: Sequence[Rejection]) -> None:
        inbox.settle(batch, rejections)
        self._counts["acked_batches"] += 1
        self._counts["acked"] += len(batch)
        self._counts["rejected"] += len(rejections)

    def _give_back(self, inbox: Inbox, delivery: Delivery) -> None:
        inbox.requeue(delivery)
        self._counts["requeued"] += 1

    def _wait(self, seconds: float, connection: BlockingConnection | None) -> bool:
        """Wait, serving ``connection`` if any; False if stop() was called meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stopping:
            self._active_at = now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return True
            if connection is None:
                time.sleep(min(remaining, _TICK))
            else:
                connection.process_data_events(time_limit=min(remaining, _TICK))
        return False

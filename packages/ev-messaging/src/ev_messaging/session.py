"""One connection's consuming: declare, consume in batches, hand each to the handler, settle.

A :class:`Session` lives as long as its connection. It declares the topology, sets the prefetch
window, takes deliveries into batches and runs the handler on the worker thread while serving
the connection, isolates a failing batch one delivery at a time, and acknowledges (settles) what
was handled. It never reconnects: when the connection fails it raises, and
:class:`~ev_messaging.consumer.BatchConsumer` (the runner) decides what comes next.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from ev_messaging.backoff import Backoff
from ev_messaging.delivery import MAX_ERROR_LENGTH, BatchHandler, Delivery, Rejection
from ev_messaging.errors import Fatal, MessagingError, Retry
from ev_messaging.inbox import Inbox
from ev_messaging.silence import SilenceWatch
from ev_messaging.topology import TopologySettings, declare_topology

# The consumer's documented logger (docs/operations.md), shared with its runner: one name for
# everything the batch consumer says.
logger = logging.getLogger("ev_messaging.consumer")

#: Longest single wait, so that a stop() without a wake-up (from a signal handler) is seen soon.
TICK = 0.1


@dataclass(frozen=True, slots=True)
class Batching:
    """How a session batches, retries and stops (the :class:`BatchConsumer` keyword arguments)."""

    prefetch: int = 1000
    batch_size: int = 500
    batch_max_wait: float = 0.05
    retry_delay: float = 0.1
    max_retry_delay: float = 5.0
    max_error_length: int = MAX_ERROR_LENGTH
    stop_grace: float = 3.0


def wake(connection: BlockingConnection) -> None:
    """End the connection's current wait, from any thread (unless it is closed already)."""
    with contextlib.suppress(pika.exceptions.AMQPError):
        connection.add_callback_threadsafe(_nothing)


def _nothing() -> None:
    pass


class ConsumerCancelled(MessagingError):
    """The broker cancelled a consumer (e.g. its queue was deleted): reconnect and redeclare."""


class _Stopped(Exception):
    """stop() was called while a batch waited to be retried."""


class _Failed(Exception):
    """The handler raised something other than Retry or Fatal (logged where it happened)."""


class Session:
    """Consumes every type queue of ``topology`` on ``connection`` until asked to stop.

    The runner owns what outlives a connection and shares it: the ``counts`` it reports, the
    ``worker`` thread (a handler cut off by a lost connection may still be running on it), the
    time :meth:`BatchConsumer.stop` was called (``stopped_at()``, None until then) and the
    liveness beat (``alive()``, called whenever the loop goes round).
    """

    def __init__(
        self,
        connection: BlockingConnection,
        topology: TopologySettings,
        handler: BatchHandler,
        batching: Batching,
        *,
        worker: ThreadPoolExecutor,
        counts: dict[str, int],
        stopped_at: Callable[[], float | None],
        alive: Callable[[], None],
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._handler = handler
        self._batching = batching
        self._worker = worker
        self._counts = counts
        self._stopped_at = stopped_at
        self._alive = alive
        self._cancelled_by_broker = False

    def run(self, on_good_batch: Callable[[], None]) -> None:
        """Consume until stop; ``on_good_batch`` after each batch handled and settled.

        Raises the connection's errors, :class:`ConsumerCancelled` and the handler's
        :class:`Fatal`. A link gone silent (half-open) is given up within two heartbeats, also
        while a blocking call waits on it, rather than pika's heartbeat + 5 to twice that.
        """
        silence = SilenceWatch(self._connection)
        try:
            self._consume(on_good_batch)
        finally:
            silence.stop()

    def _consume(self, on_good_batch: Callable[[], None]) -> None:
        connection, batching = self._connection, self._batching
        channel = connection.channel()
        declare_topology(channel, self._topology)
        # Bound the unacked deliveries the broker pushes to us (memory, fairness between
        # consumers): while the handler retries, this is all that is held. Quorum queues do not
        # support global QoS, so the limit is per consumer.
        channel.basic_qos(prefetch_count=batching.prefetch)
        inbox = Inbox(
            connection,
            channel,
            self._topology,
            max_error_length=batching.max_error_length,
            on_delivery=self._on_delivery,
        )
        channel.add_on_cancel_callback(self._on_cancelled_by_broker)
        tags = [channel.basic_consume(queue, inbox.on_message) for queue in self._topology.queues]
        first_at = 0.0
        while True:
            self._alive()
            if self._cancelled_by_broker:
                raise ConsumerCancelled("the broker cancelled a consumer")
            stopped_at = self._stopped_at()
            if stopped_at is not None:
                for tag in tags:  # no new deliveries; the undispatched ones are requeued
                    channel.basic_cancel(tag)
                # Finish what is in hand, for as long as a prompt exit allows; what is left goes
                # back to the queues when the channel closes.
                grace_ends = stopped_at + batching.stop_grace
                while inbox.deliveries and time.monotonic() < grace_ends:
                    self._handle(inbox)
                return
            if not inbox.deliveries:
                connection.process_data_events(time_limit=TICK)
                first_at = time.monotonic()
                continue
            deadline = first_at + batching.batch_max_wait
            while len(inbox.deliveries) < batching.batch_size and self._stopped_at() is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                connection.process_data_events(time_limit=min(remaining, TICK))
            if self._handle(inbox):
                on_good_batch()
            first_at = time.monotonic()

    def _on_cancelled_by_broker(self, _frame: Any) -> None:
        self._cancelled_by_broker = True

    def _on_delivery(self) -> None:
        self._counts["consumed"] += 1

    def _handle(self, inbox: Inbox) -> bool:
        """Run the handler on the oldest deliveries in hand and settle them. True on success."""
        batch = inbox.take(self._batching.batch_size)
        try:
            rejections = self._call(batch)
        except _Stopped:
            inbox.deliveries.clear()  # unacknowledged: the broker delivers them again
            return False
        except _Failed:
            if len(batch) == 1:
                self._give_back(inbox, batch[0])
                return False
            return self._isolate(inbox, batch)
        self._settle(inbox, batch, rejections)
        return True

    def _isolate(self, inbox: Inbox, batch: list[Delivery]) -> bool:
        """Handle a failed batch one delivery at a time: only those that fail again go back to
        their queue, towards its delivery limit; the others are not punished for sharing a batch
        with a poison message."""
        logger.warning("batch of %d failed; handling its deliveries one by one", len(batch))
        for delivery in batch:
            try:
                rejections = self._call([delivery])
            except _Stopped:
                inbox.deliveries.clear()
                return False
            except _Failed:
                self._give_back(inbox, delivery)
                continue
            self._settle(inbox, [delivery], rejections)
        return True

    def _call(self, batch: list[Delivery]) -> Sequence[Rejection]:
        """The handler's rejections for ``batch``; after :class:`Retry`, the same batch again
        after a capped backoff, serving the connection meanwhile (heartbeats) but taking no more
        than the prefetch window."""
        backoff = Backoff(self._batching.retry_delay, self._batching.max_retry_delay)
        while True:
            # Outside the try: the connection's own errors are not the handler's failures.
            done = self._handled_in_worker(batch)
            try:
                return done.result()
            except Retry as exc:
                delay = backoff.next_delay()
                logger.warning("batch of %d: %s; retrying in %.2fs", len(batch), exc, delay)
                self._counts["retries"] += 1
                if not self._wait(delay):
                    raise _Stopped from exc
            except Fatal:
                raise
            except Exception as exc:
                logger.exception("handling a batch of %d failed", len(batch))
                self._counts["failed_batches"] += 1
                raise _Failed from exc

    def _handled_in_worker(self, batch: list[Delivery]) -> Future[Sequence[Rejection]]:
        """``handler(batch)`` run on the worker thread, done; the connection served meanwhile.

        The next deliveries arrive while the handler waits on its store: receiving overlaps
        with writing. Only this thread touches the connection (pika is not thread-safe); the
        worker wakes it when the handler is done. One worker: batches are handled in order.
        """
        connection = self._connection
        future = self._worker.submit(self._handler, batch)
        future.add_done_callback(lambda _done: wake(connection))
        # No liveness beat here: a handler that hangs must age the liveness signal.
        while not future.done():
            connection.process_data_events(time_limit=TICK)
        return future

    def _settle(self, inbox: Inbox, batch: list[Delivery], rejections: Sequence[Rejection]) -> None:
        inbox.settle(batch, rejections)
        self._counts["acked_batches"] += 1
        self._counts["acked"] += len(batch)
        self._counts["rejected"] += len(rejections)

    def _give_back(self, inbox: Inbox, delivery: Delivery) -> None:
        inbox.requeue(delivery)
        self._counts["requeued"] += 1

    def _wait(self, seconds: float) -> bool:
        """Wait, serving the connection; False if stop() was called meanwhile."""
        deadline = time.monotonic() + seconds
        while self._stopped_at() is None:
            self._alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            self._connection.process_data_events(time_limit=min(remaining, TICK))
        return False

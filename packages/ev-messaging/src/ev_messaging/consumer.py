"""The batch consumer: a reconnecting runner around one :class:`~ev_messaging.session.Session`
per connection, which collects deliveries, hands them to a handler in batches, moves the invalid
ones aside, then acknowledges each batch with one ``basic.ack(multiple)``.

The runner keeps what outlives a connection: the fail-over order of the nodes (after a lost link
the next node is tried first), the capped backoff between attempts (reset by a good batch), the
counters and the liveness signal. Errors that only a human can fix stop it.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from ev_messaging.backoff import Backoff
from ev_messaging.connect import connect_first
from ev_messaging.delivery import MAX_ERROR_LENGTH, BatchHandler
from ev_messaging.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    Fatal,
    MessagingError,
    TopologyError,
    from_pika,
)
from ev_messaging.session import TICK, Batching, Session, wake
from ev_messaging.settings import AmqpSettings
from ev_messaging.topology import TopologySettings

logger = logging.getLogger(__name__)


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
        self._batching = Batching(
            prefetch=prefetch,
            batch_size=batch_size,
            batch_max_wait=batch_max_wait,
            retry_delay=retry_delay,
            max_retry_delay=max_retry_delay,
            max_error_length=max_error_length,
            stop_grace=stop_grace,
        )
        self._stopped_at: float | None = None  # when stop() was first called
        self._connection: BlockingConnection | None = None
        self._run_thread: threading.Thread | None = None
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._active_at = time.monotonic()

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
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        connection = self._connection
        if connection is not None and threading.current_thread() is not self._run_thread:
            # Already closed: run() sees the flag anyway.
            wake(connection)

    def run(self) -> None:
        """Consume until :meth:`stop`; reconnects on connection loss.

        Raises :class:`AuthenticationFailed` when refused, :class:`TlsVerificationFailed` when
        the broker's certificate does not verify, :class:`TopologyError` when the queues exist
        with other arguments, and the handler's :class:`Fatal`; all need a human.
        """
        self._run_thread = threading.current_thread()
        # One worker for every session: batches are handled in order, also across reconnects.
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ev-batch")
        try:
            self._run(worker)
        finally:
            # A handler still running was cut off by a lost connection or an error: its
            # batch is redelivered. Wait for it, so nobody closes its client under it.
            worker.shutdown(wait=True)
        logger.info("consumer stopped")

    def _run(self, worker: ThreadPoolExecutor) -> None:
        backoff = Backoff(self._settings.retry_delay, self._settings.max_retry_delay)
        connected_before = False
        first = 0  # the URL tried first
        outage_since: float | None = None  # one WARNING per outage; the retries at INFO
        while self._stopped_at is None:
            try:
                self._connection, connected_to = self._connect(first)
            except BrokerUnavailable as exc:
                delay = backoff.next_delay()
                level = logging.WARNING if outage_since is None else logging.INFO
                outage_since = outage_since or time.monotonic()
                logger.log(level, "broker unavailable (%s); retrying in %.1fs", exc, delay)
                self._wait(delay)
                continue
            if outage_since is not None:
                logger.info("broker back after %.1fs", time.monotonic() - outage_since)
                outage_since = None
            if connected_before:
                self._counts["reconnects"] += 1
            connected_before = True
            # Once this link is lost, the next node is tried first: the lost one may be the
            # problem, and a silent one costs a handshake timeout (15 s) at every reconnect.
            first = (connected_to + 1) % len(self._settings.broker_urls)
            session = Session(
                self._connection,
                self._topology,
                self._handler,
                self._batching,
                worker=worker,
                counts=self._counts,
                stopped_at=lambda: self._stopped_at,
                alive=self._beat,
            )
            try:
                session.run(on_good_batch=backoff.reset)
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
                self._wait(backoff.next_delay())
            finally:
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

    def _beat(self) -> None:
        self._active_at = time.monotonic()

    def _wait(self, seconds: float) -> None:
        """Wait between connections, beating; returns early if stop() is called."""
        deadline = time.monotonic() + seconds
        while self._stopped_at is None:
            self._active_at = now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return
            time.sleep(min(remaining, TICK))

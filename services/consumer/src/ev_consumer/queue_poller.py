"""Queue depths for the metrics: a thread polling the broker on a small connection of its own.

pika connections are not thread-safe, so the poller never touches the consuming connection; its
:class:`ev_messaging.QueueDepths` opens its own and asks for each queue's counts every few
seconds. Between polls it serves that connection (heartbeats) rather than sleeping.

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

from ev_consumer.metrics import ConsumerMetrics
from ev_messaging import (
    AmqpSettings,
    MessagingError,
    NoBrokerAnswered,
    QueueDepths,
    QueueUnavailable,
)

log = logging.getLogger(__name__)

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
        self._depths = QueueDepths(amqp, client_name="queue-depth poller", log=log)
        self._queues = tuple(queues)
        self._metrics = metrics
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown: set[str] = set()
        self._seen: set[str] = set()  # queues the broker has ever answered for
        self._missing: set[str] = set()  # seen queues now missing, already reported
        self._failing = False

    def poll(self) -> None:
        """Read every queue's counts once, connecting first if needed."""
        try:
            for queue in self._queues:
                self._poll_queue(queue)
        except MessagingError as exc:  # reported here, once per outage
            self._metrics.broker_up.set(0)
            self._forget_all()
            self._depths.close()
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
            self._depths.close()
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
            self._depths.close()

    def _poll_queue(self, queue: str) -> None:
        try:
            depth = self._depths.read(queue)
        except QueueUnavailable as exc:
            # The broker closed the channel (the queue does not exist, or may not be read).
            self._forget(queue)
            self._report_missing(exc)
            return
        self._metrics.queue_ready.labels(queue).set(depth.messages)
        self._metrics.queue_consumers.labels(queue).set(depth.consumers)
        self._shown.add(queue)
        self._seen.add(queue)
        self._missing.discard(queue)

    def _report_missing(self, exc: QueueUnavailable) -> None:
        queue = exc.queue
        if exc.not_found and queue not in self._seen:
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
            try:
                served = self._depths.serve(min(remaining, _TICK))
            except MessagingError:
                continue  # the connection is dropped: the next poll reconnects and reports
            if not served:
                self._stop.wait(min(remaining, _TICK))

    def _forget(self, queue: str) -> None:
        """No stale depth for a queue that could not be read."""
        if queue in self._shown:
            self._metrics.queue_ready.remove(queue)
            self._metrics.queue_consumers.remove(queue)
            self._shown.discard(queue)

    def _forget_all(self) -> None:
        for queue in tuple(self._shown):
            self._forget(queue)


def describe(exc: MessagingError) -> str:
    """Why the broker could not be read, never empty (pika's connection errors often have no
    message of their own; ev-messaging's translation says what they were), else the class. When
    no node answered, each node's reason and URL."""
    if isinstance(exc, NoBrokerAnswered):
        return "; ".join(f"{error} (at {url})" for url, error in exc.attempts)
    text = str(exc)
    return text if text else f"{type(exc).__name__}: {exc!r}"

"""The consumer's Prometheus metrics (names and meanings in docs/operations.md).

Counters are read at scrape time from ``BatchConsumer.stats`` and ``ReadingPipeline.stats``: the hot
path only increments plain integers, as it did before. Per batch, the handler wrapper adds two
histogram observations. Queue depths come from :class:`ev_consumer.queue_poller.QueuePoller`.
Every metric lives in the registry of one :class:`ConsumerMetrics`, not in a global one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

from prometheus_client import Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ev_consumer.__about__ import __version__
from ev_consumer.alarm_notifier import AlarmNotifier
from ev_consumer.pipeline import ReadingPipeline
from ev_messaging import BatchConsumer, BatchHandler, Delivery, Rejection
from ev_service.metrics import service_registry

#: Seconds to validate and store one batch: from a few hundred microseconds to a hung Redis.
BATCH_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class ConsumerMetrics:
    """The registry a metrics endpoint serves, and the metrics the consumer updates itself."""

    def __init__(self) -> None:
        self.registry = service_registry("consumer", __version__, "The consumer's")
        self.batch_seconds = Histogram(
            "ev_consumer_batch_duration_seconds",
            "Time to validate and store one batch (each attempt, retried ones included)",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "ev_consumer_batch_size",
            "Deliveries per batch handed to the pipeline",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.queue_ready = Gauge(
            "ev_queue_messages_ready",
            "Messages ready (not yet delivered) in a queue, polled every few seconds",
            ["queue"],
            registry=self.registry,
        )
        self.queue_consumers = Gauge(
            "ev_queue_consumers",
            "Consumers attached to a queue, polled with its depth",
            ["queue"],
            registry=self.registry,
        )
        self.broker_up = Gauge(
            "ev_consumer_queue_poll_up",
            "1 when the last queue poll reached the broker, else 0",
            registry=self.registry,
        )

    def timed(self, handler: BatchHandler) -> BatchHandler:
        """``handler`` with each call's duration and batch size observed."""
        return _TimedHandler(handler, self)

    def track(self, consumer: BatchConsumer, pipeline: ReadingPipeline) -> None:
        """Export the counters of ``consumer`` and ``pipeline``, read at each scrape."""
        self.registry.register(_StatsCollector(consumer, pipeline))

    def track_notifier(self, notifier: AlarmNotifier) -> None:
        """Export the alarm notifier's deliveries and the outbox's backlog, read at each scrape."""
        self.registry.register(_NotifierCollector(notifier))

    @contextlib.contextmanager
    def serving(self, host: str, port: int) -> Iterator[None]:
        """Serve the registry over HTTP on ``host:port`` (any path, e.g. ``/metrics``) for the
        duration of the block. Raises ``OSError`` when the address cannot be bound."""
        server, thread = start_http_server(port, host, registry=self.registry)
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


class _TimedHandler:
    def __init__(self, handler: BatchHandler, metrics: ConsumerMetrics) -> None:
        self._handler = handler
        self._seconds = metrics.batch_seconds
        self._size = metrics.batch_size

    def __call__(self, deliveries: Sequence[Delivery], /) -> Sequence[Rejection]:
        self._size.observe(len(deliveries))
        started = time.perf_counter()
        try:
            return self._handler(deliveries)
        finally:
            self._seconds.observe(time.perf_counter() - started)


#: (metric, ConsumerStats field, help) of the runner's counters.
RUNNER_COUNTERS = (
    ("ev_consumer_deliveries", "consumed", "Deliveries received from the broker"),
    ("ev_consumer_acked", "acked", "Deliveries acknowledged (stored, duplicate or moved aside)"),
    ("ev_consumer_batch_retries", "retries", "Batches handed again after a retryable failure"),
    (
        "ev_consumer_failed_batches",
        "failed_batches",
        "Batches whose handling raised an unexpected error (then handled one by one)",
    ),
    (
        "ev_consumer_requeued",
        "requeued",
        "Deliveries given back to their queue after failing on their own",
    ),
    ("ev_consumer_broker_reconnects", "reconnects", "Reconnections after a lost broker link"),
)
#: (metric, PipelineStats field, help) of the pipeline's counters, except the moved-aside ones.
PIPELINE_COUNTERS = (
    ("ev_consumer_readings_stored", "stored", "Readings newly stored in Redis"),
    (
        "ev_consumer_readings_duplicate",
        "duplicates",
        "Readings skipped as already stored (a redelivery or a republish)",
    ),
    (
        "ev_consumer_redis_errors",
        "storage_retries",
        "Batch attempts that failed because Redis was unavailable (retried with backoff)",
    ),
)


class _StatsCollector:
    """Turns the runner's and the pipeline's running totals into metric families at scrape time."""

    def __init__(self, consumer: BatchConsumer, pipeline: ReadingPipeline) -> None:
        self._consumer = consumer
        self._pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        runner = self._consumer.stats
        pipeline = self._pipeline.stats
        for name, field, documentation in RUNNER_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=getattr(runner, field))
        for name, field, documentation in PIPELINE_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=getattr(pipeline, field))
        moved = CounterMetricFamily(
            "ev_consumer_readings_moved_aside",
            "Readings moved to ev.sensors.invalid, by reason: invalid (failed validation), "
            "expired (older than the history retention) or conflict (another value for a "
            "stored reading's sensor, type and timestamp)",
            labels=["reason"],
        )
        moved.add_metric(["invalid"], pipeline.invalid)
        moved.add_metric(["expired"], pipeline.expired)
        moved.add_metric(["conflict"], pipeline.conflicts)
        yield moved
        alarms = CounterMetricFamily(
            "ev_consumer_alarm_transitions",
            "Alarm transitions made by the stored readings, by kind: raised, cleared, revised "
            "(a late reading changed a past episode's times) or retracted (it never happened)",
            labels=["kind"],
        )
        for kind in ("raised", "cleared", "revised", "retracted"):
            alarms.add_metric([kind], pipeline.alarm_transitions[kind])
        yield alarms
        yield GaugeMetricFamily(
            "ev_consumer_loop_stalled_seconds",
            "Seconds since the run loop last went round: the liveness signal (well under a "
            "second, or a batch's duration)",
            value=max(0.0, time.monotonic() - self._consumer.active_at),
        )


class _NotifierCollector:
    """The alarm notifier's counts, per webhook (labelled by host), at scrape time."""

    def __init__(self, notifier: AlarmNotifier) -> None:
        self._notifier = notifier

    def collect(self) -> Iterator[Metric]:
        stats = self._notifier.stats
        deliveries = CounterMetricFamily(
            "ev_consumer_webhook_deliveries",
            "Alarm webhook POSTs by webhook (its host) and outcome: delivered (a 2xx) or "
            "failed (an error, a timeout or another status; retried with backoff)",
            labels=["webhook", "outcome"],
        )
        last = GaugeMetricFamily(
            "ev_consumer_webhook_last_success_timestamp_seconds",
            "When the webhook last accepted a notification (Unix time); absent until it has",
            labels=["webhook"],
        )
        for label, target in stats.targets.items():
            deliveries.add_metric([label, "delivered"], target.delivered)
            deliveries.add_metric([label, "failed"], target.failed)
            if target.last_success is not None:
                last.add_metric([label], target.last_success)
        yield deliveries
        yield last
        yield CounterMetricFamily(
            "ev_consumer_alarm_outbox_dropped",
            "Alarm outbox entries trimmed (more than the outbox keeps) before every webhook "
            "accepted them: notifications lost",
            value=stats.dropped,
        )
        if stats.lag is not None:
            yield GaugeMetricFamily(
                "ev_consumer_alarm_outbox_lag",
                "Alarm transitions in the outbox that no notifier has read yet (polled)",
                value=stats.lag,
            )
        if stats.pending is not None:
            yield GaugeMetricFamily(
                "ev_consumer_alarm_outbox_pending",
                "Alarm transitions read by a notifier and not yet accepted by every webhook "
                "(polled)",
                value=stats.pending,
            )

"""The consumer process: wiring from settings, signals, exit statuses (see ``__main__``)."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from datetime import timedelta
from types import FrameType

import httpx

from ev_consumer.alarm_notifier import AlarmNotifier
from ev_consumer.alarm_rules import AlarmRulesSource
from ev_consumer.heartbeat import Heartbeat
from ev_consumer.metrics import ConsumerMetrics
from ev_consumer.pipeline import ReadingPipeline
from ev_consumer.queue_poller import QueuePoller
from ev_consumer.settings import ConsumerSettings
from ev_consumer.stale_sweeper import StaleSweeper
from ev_consumer.webhooks import WebhookSender, webhook_targets
from ev_messaging import (
    INVALID_QUEUE,
    UNROUTED_QUEUE,
    AuthenticationFailed,
    BatchConsumer,
    BrokerUnavailable,
    Fatal,
    TopologyError,
    routing_key,
)
from ev_messaging import TlsVerificationFailed as BrokerCertificateRejected
from ev_schemas import ReadingValidator
from ev_service import ConfigurationError, configure_logging, load_settings
from ev_storage import (
    AlarmOutbox,
    KeyLayout,
    ReadingWriter,
    StorageRefused,
    StorageUnavailable,
    SyncClient,
    check_connection,
)
from ev_storage import TlsVerificationFailed as RedisCertificateRejected
from ev_storage.staleness import StalenessSweep

log = logging.getLogger("ev_consumer")

#: Seconds a webhook has to answer (connecting included) before the attempt counts as failed.
WEBHOOK_TIMEOUT_S = 10.0


def build_consumer(
    settings: ConsumerSettings,
    client: SyncClient,
    metrics: ConsumerMetrics | None = None,
    *,
    sweeper: list[StaleSweeper] | None = None,
) -> BatchConsumer:
    """Wire validator, writer and runner from settings; nothing connects until ``run()``.

    With ``metrics``, each batch is timed and the runner's and pipeline's counters exported.
    """
    validator = ReadingValidator(
        catalogue=settings.catalogue(),
        max_future_skew=timedelta(seconds=settings.max_future_skew_s),
    )
    storage = settings.storage()
    rules = AlarmRulesSource(
        client, KeyLayout(storage.key_prefix), settings.alarm_rules(), settings.catalogue()
    )
    writer = ReadingWriter(client, storage)
    pipeline = ReadingPipeline(validator, writer, rules)
    if sweeper is not None:  # the caller runs it beside the batch loop
        sweeper.append(StaleSweeper(StalenessSweep(client, storage), rules, writer))
    consumer = BatchConsumer(
        settings.amqp("ev-consumer"),
        settings.topology(),
        pipeline if metrics is None else metrics.timed(pipeline),
        prefetch=settings.consumer_prefetch,
        batch_size=settings.consumer_batch_size,
        batch_max_wait=settings.consumer_batch_ms / 1000,
    )
    if metrics is not None:
        metrics.track(consumer, pipeline)
    return consumer


@contextlib.contextmanager
def observed(
    settings: ConsumerSettings, consumer: BatchConsumer, metrics: ConsumerMetrics
) -> Iterator[None]:
    """While the block runs: the heartbeat file and, unless ``METRICS_PORT`` is 0, the metrics
    endpoint and the queue-depth poller.

    An endpoint that cannot listen is logged, not fatal: metrics are not worth stopping
    ingestion for, and the missing scrape target shows as down.
    """
    with contextlib.ExitStack() as stack:
        heartbeat = Heartbeat(
            settings.consumer_heartbeat_file,
            lambda: consumer.active_at,
            max_age=settings.consumer_heartbeat_max_age_s,
        )
        stack.enter_context(heartbeat.running())
        if settings.metrics_port:
            address = f"{settings.metrics_host}:{settings.metrics_port}"
            try:
                stack.enter_context(metrics.serving(settings.metrics_host, settings.metrics_port))
            except OSError as exc:
                log.error("metrics endpoint not started: cannot listen on %s: %s", address, exc)
            else:
                log.info("metrics on http://%s/metrics", address)
                amqp = settings.amqp("ev-consumer-metrics")
                queues = [routing_key(name) for name in settings.catalogue()]
                poller = QueuePoller(
                    amqp,
                    [*queues, INVALID_QUEUE, UNROUTED_QUEUE],
                    metrics,
                    interval=settings.metrics_queue_poll_s,
                )
                stack.enter_context(poller.running())
        yield


@contextlib.contextmanager
def notifying(
    settings: ConsumerSettings, client: SyncClient, metrics: ConsumerMetrics
) -> Iterator[AlarmNotifier | None]:
    """While the block runs, with ``ALARM_WEBHOOK_URLS``: the alarm notifier's thread (its
    metrics exported); without: nothing."""
    secret = settings.alarm_webhook_secret
    if not settings.alarm_webhook_urls or secret is None:
        yield None
        return
    targets = webhook_targets(settings.alarm_webhook_urls)
    outbox = AlarmOutbox(client, KeyLayout(settings.redis.key_prefix))
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False) as http:
        notifier = AlarmNotifier(
            outbox,
            targets,
            WebhookSender(http, secret.get_secret_value().encode()),
            # A blocking read must end well within the client's socket timeout.
            block_s=min(1.0, settings.redis.socket_timeout_s / 2),
        )
        metrics.track_notifier(notifier)
        log.info(
            "alarm webhooks: %s (as %s)",
            ", ".join(target.label for target in targets),
            notifier.name,
        )
        with notifier.running():
            yield notifier


def redis_client(settings: ConsumerSettings) -> SyncClient:
    """The consumer's Redis client; connects on first use, so a Redis that is down at start-up
    only makes the first batch wait and retry. A cluster client (``REDIS_CLUSTER``) reads the
    slot map at once: :class:`StorageUnavailable` if no seed node answers."""
    return settings.redis.sync_client()


def check_tls(settings: ConsumerSettings, client: SyncClient, consumer: BatchConsumer) -> None:
    """Where TLS is in use, connect to Redis and to the broker once at start-up, so that a
    certificate that does not verify ends the process at once (the caller exits 2).

    A server that is merely down is left to the run loop, which waits for it as it would
    without TLS. Refused credentials are raised too, as :meth:`BatchConsumer.run` would.
    """
    if settings.redis.tls:
        with contextlib.suppress(StorageUnavailable):
            check_connection(client)
    if settings.rabbitmq.uses_tls:
        with contextlib.suppress(BrokerUnavailable):
            consumer.check_connection()


def run(stop_requested: bool = False) -> int:
    """Consume until SIGTERM or SIGINT; the exit status. ``stop_requested``: one came already."""
    try:
        settings = load_settings(ConsumerSettings)
    except ConfigurationError as exc:
        print(exc.line("ev-consumer"), file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        client = redis_client(settings)
    except RedisCertificateRejected as exc:  # a cluster client connects at once
        print(f"ev-consumer: {exc}", file=sys.stderr)
        return 2
    except StorageUnavailable as exc:
        # Only a cluster client connects here; exit for the supervisor to start us again.
        log.error("no Redis Cluster seed node answered (REDIS_HOST/REDIS_PORT): %s", exc)
        return 1
    metrics = ConsumerMetrics()
    sweepers: list[StaleSweeper] = []
    consumer = build_consumer(settings, client, metrics, sweeper=sweepers)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current batch", signal.Signals(signum).name)
        consumer.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if stop_requested:
        log.info("stopped during start-up")
        consumer.stop()
    # Conditions only a human can fix end the process with status 2 and one clear line, rather
    # than a retry loop that looks alive or a traceback.
    try:
        check_tls(settings, client, consumer)
        with (
            observed(settings, consumer, metrics),
            sweepers[0].running(),
            notifying(settings, client, metrics),
        ):
            consumer.run()
    except (RedisCertificateRejected, BrokerCertificateRejected) as exc:
        # Configuration, like an invalid setting: one plain line, never a plain-text fallback.
        print(f"ev-consumer: {exc}", file=sys.stderr)
        return 2
    except AuthenticationFailed as exc:
        log.error(
            "RabbitMQ refused the credentials or permissions (check RABBITMQ_USER/RABBITMQ_PASS/"
            "RABBITMQ_VHOST or RABBITMQ_URLS): %s",
            exc,
        )
        return 2
    except StorageRefused as exc:
        # Redis refused the start-up check's PING (TLS in use): an ACL only a human can change.
        log.error("%s (check REDIS_PASSWORD and the Redis ACL)", exc)
        return 2
    except TopologyError as exc:
        log.error("RabbitMQ refused the topology (queues declared with other arguments?): %s", exc)
        return 2
    except Fatal as exc:
        if isinstance(exc.__cause__, RedisCertificateRejected):
            # Redis was down at start-up and came back with a certificate that does not verify.
            log.error("%s", exc.__cause__)
        else:
            log.error("%s (check REDIS_PASSWORD and the Redis ACL)", exc)
        return 2
    finally:
        client.close()
    log.info("stopped")
    return 0

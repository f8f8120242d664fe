"""The consumer process: wiring from settings, signals, exit statuses (see ``__main__``)."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from datetime import timedelta
from types import FrameType

from pydantic import ValidationError
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from ev_consumer.heartbeat import Heartbeat
from ev_consumer.logs import configure_logging
from ev_consumer.metrics import ConsumerMetrics
from ev_consumer.pipeline import ReadingPipeline
from ev_consumer.queue_poller import QueuePoller
from ev_consumer.settings import ConsumerSettings
from ev_messaging import (
    INVALID_QUEUE,
    UNROUTED_QUEUE,
    AuthenticationFailed,
    BatchConsumer,
    BrokerUnavailable,
    Fatal,
    MessagingError,
    TopologyError,
    TopologySettings,
    routing_key,
)
from ev_messaging import TlsVerificationFailed as BrokerCertificateRejected
from ev_schemas import Catalogue, ReadingValidator, default_catalogue
from ev_storage import (
    ReadingWriter,
    StorageSettings,
    StorageUnavailable,
    SyncClient,
    check_connection,
    redis_tls_options,
    sync_client,
)
from ev_storage import TlsVerificationFailed as RedisCertificateRejected

log = logging.getLogger("ev_consumer")


def sensor_catalogue(settings: ConsumerSettings) -> Catalogue:
    """The configured sensor types (``SENSOR_TYPES``), or every built-in one."""
    catalogue = default_catalogue()
    names = settings.sensor_type_names()
    return catalogue if names is None else catalogue.restrict(names)


def build_consumer(
    settings: ConsumerSettings, client: SyncClient, metrics: ConsumerMetrics | None = None
) -> BatchConsumer:
    """Wire validator, writer and runner from settings; nothing connects until ``run()``.

    With ``metrics``, each batch is timed and the runner's and pipeline's counters exported.
    """
    catalogue = sensor_catalogue(settings)
    storage = StorageSettings(
        key_prefix=settings.redis_key_prefix,
        history_retention=settings.history_retention,
        latest_ttl=timedelta(seconds=settings.latest_ttl_s) if settings.latest_ttl_s else None,
        summary_ttl=timedelta(seconds=settings.summary_ttl_s) if settings.summary_ttl_s else None,
    )
    validator = ReadingValidator(
        catalogue=catalogue, max_future_skew=timedelta(seconds=settings.max_future_skew_s)
    )
    pipeline = ReadingPipeline(validator, ReadingWriter(client, storage))
    consumer = BatchConsumer(
        settings.amqp("ev-consumer"),
        TopologySettings(sensor_types=tuple(catalogue), delivery_limit=settings.delivery_limit),
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
                queues = [routing_key(name) for name in sensor_catalogue(settings)]
                poller = QueuePoller(
                    amqp,
                    [*queues, INVALID_QUEUE, UNROUTED_QUEUE],
                    metrics,
                    interval=settings.metrics_queue_poll_s,
                )
                stack.enter_context(poller.running())
        yield


def redis_client(settings: ConsumerSettings) -> SyncClient:
    """The consumer's Redis client; connects on first use, so a Redis that is down at start-up
    only makes the first batch wait and retry. A cluster client (``REDIS_CLUSTER``) reads the
    slot map at once: :class:`StorageUnavailable` if no seed node answers."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    timeout = settings.redis_socket_timeout_s
    tls = (
        redis_tls_options(
            ca_file=settings.redis_tls_ca_file,
            cert_file=settings.redis_tls_cert_file,
            key_file=settings.redis_tls_key_file,
            insecure=settings.redis_tls_insecure,
        )
        if settings.redis_tls
        else {}
    )
    options = {
        "host": settings.redis_host,
        "port": settings.redis_port,
        "db": settings.redis_db,
        "password": password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
        # redis-py replays a whole pipeline after a lost connection or a timeout; the write script
        # is idempotent, so a replay is harmless. Few, short retries (redis-py's default is ten, up
        # to 1 s apart, each waiting a full socket timeout on a hung server): the batch runner's
        # own capped backoff takes over after that, without blocking heartbeats or SIGTERM.
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), settings.redis_retries),
        **tls,
    }
    return sync_client(options, cluster=settings.redis_cluster)


def check_tls(settings: ConsumerSettings, client: SyncClient, consumer: BatchConsumer) -> None:
    """Where TLS is in use, connect to Redis and to the broker once at start-up, so that a
    certificate that does not verify ends the process at once (the caller exits 2).

    A server that is merely down is left to the run loop, which waits for it as it would
    without TLS. Refused credentials are raised too, as :meth:`BatchConsumer.run` would.
    """
    if settings.redis_tls:
        with contextlib.suppress(StorageUnavailable):
            check_connection(client)
    if settings.uses_amqps:
        with contextlib.suppress(BrokerUnavailable):
            consumer.check_connection()


def run(stop_requested: bool = False) -> int:
    """Consume until SIGTERM or SIGINT; the exit status. ``stop_requested``: one came already."""
    try:
        settings = ConsumerSettings()
        settings.amqp("ev-consumer")  # TLS settings that fit the URLs, files that load
    except (ValidationError, MessagingError) as exc:
        print(f"ev-consumer: invalid configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # pika narrates every connect at INFO; ev-messaging logs the node reached. Its ERROR
        # records of failures we handle are moved to DEBUG by ev-messaging's filter.
        logging.getLogger("pika").setLevel(logging.WARNING)
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
    consumer = build_consumer(settings, client, metrics)

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
        with observed(settings, consumer, metrics):
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

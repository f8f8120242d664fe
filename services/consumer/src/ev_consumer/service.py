"""The consumer process: wiring from settings, signals, exit statuses (see ``__main__``)."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import timedelta
from types import FrameType

import redis
from pydantic import ValidationError
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from ev_consumer.pipeline import ReadingPipeline
from ev_consumer.settings import ConsumerSettings
from ev_messaging import (
    AmqpSettings,
    AuthenticationFailed,
    BatchConsumer,
    Fatal,
    TopologyError,
    TopologySettings,
)
from ev_schemas import ReadingValidator, default_catalogue
from ev_storage import ReadingWriter, StorageSettings, redis_tls_options

log = logging.getLogger("ev_consumer")


def build_consumer(settings: ConsumerSettings, client: redis.Redis) -> BatchConsumer:
    """Wire validator, writer and runner from settings; nothing connects until ``run()``."""
    catalogue = default_catalogue()
    names = settings.sensor_type_names()
    if names is not None:
        catalogue = catalogue.restrict(names)
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
    return BatchConsumer(
        AmqpSettings(
            urls=settings.amqp_urls(),
            heartbeat=settings.rabbitmq_heartbeat_s,
            client_name="ev-consumer",
        ),
        TopologySettings(sensor_types=tuple(catalogue), delivery_limit=settings.delivery_limit),
        pipeline,
        prefetch=settings.consumer_prefetch,
        batch_size=settings.consumer_batch_size,
        batch_max_wait=settings.consumer_batch_ms / 1000,
    )


def redis_client(settings: ConsumerSettings) -> redis.Redis:
    """The consumer's Redis client; connects on first use, so a Redis that is down at start-up
    only makes the first batch wait and retry."""
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
    return redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        # redis-py replays a whole pipeline after a lost connection or a timeout; the write script
        # is idempotent, so a replay is harmless. Few, short retries (redis-py's default is ten, up
        # to 1 s apart, each waiting a full socket timeout on a hung server): the batch runner's
        # own capped backoff takes over after that, without blocking heartbeats or SIGTERM.
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), settings.redis_retries),
        **tls,
    )


def run(stop_requested: bool = False) -> int:
    """Consume until SIGTERM or SIGINT; the exit status. ``stop_requested``: one came already."""
    try:
        settings = ConsumerSettings()
    except ValidationError as exc:
        print(f"ev-consumer: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("pika").setLevel(logging.WARNING)  # connection chatter at INFO
    client = redis_client(settings)
    consumer = build_consumer(settings, client)

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
        consumer.run()
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
        log.error("%s (check REDIS_PASSWORD and the Redis ACL)", exc)
        return 2
    finally:
        client.close()
    log.info("stopped")
    return 0

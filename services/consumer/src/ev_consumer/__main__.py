"""``ev-consumer`` / ``python -m ev_consumer``: run the consumer until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import timedelta
from types import FrameType

import redis

from ev_consumer.pipeline import ReadingPipeline
from ev_consumer.settings import ConsumerSettings
from ev_messaging import AmqpSettings, AuthenticationFailed, BatchConsumer, TopologySettings
from ev_schemas import ReadingValidator, default_catalogue
from ev_storage import ReadingWriter, StorageSettings

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
        AmqpSettings(urls=settings.amqp_urls(), client_name="ev-consumer"),
        TopologySettings(sensor_types=tuple(catalogue), delivery_limit=settings.delivery_limit),
        pipeline,
        prefetch=settings.consumer_prefetch,
        batch_size=settings.consumer_batch_size,
        batch_max_wait=settings.consumer_batch_ms / 1000,
    )


def redis_client(settings: ConsumerSettings) -> redis.Redis:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        password=password,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


def main() -> int:
    settings = ConsumerSettings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    client = redis_client(settings)
    consumer = build_consumer(settings, client)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current batch", signal.Signals(signum).name)
        consumer.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        consumer.run()
    except AuthenticationFailed as exc:
        log.error("RabbitMQ refused the credentials or permissions: %s", exc)
        return 2
    finally:
        client.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

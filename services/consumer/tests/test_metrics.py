"""The consumer's Prometheus metrics: counters read at scrape time, batch timings, the endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence

import pytest
import redis
from _consumer_process import ConsumerProcess, free_port, publish, readings, wait_until
from _scrape import Samples, parse, scrape, value
from prometheus_client import generate_latest

from ev_consumer import __version__
from ev_consumer.metrics import ConsumerMetrics
from ev_consumer.pipeline import ReadingPipeline
from ev_messaging import (
    AmqpSettings,
    BatchConsumer,
    Delivery,
    Rejection,
    TopologySettings,
)
from ev_schemas import ReadingValidator, default_catalogue
from ev_storage import ReadingWriter, StorageSettings


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    # Never used to connect: the collector only reads the pipeline's counters.
    client = redis.Redis(host="127.0.0.1", port=1)
    yield client
    client.close()


@pytest.fixture
def pipeline(client: redis.Redis) -> ReadingPipeline:
    validator = ReadingValidator(catalogue=default_catalogue())
    return ReadingPipeline(validator, ReadingWriter(client, StorageSettings()))


def unconnected_consumer(
    handler: Callable[[Sequence[Delivery]], Sequence[Rejection]],
) -> BatchConsumer:
    return BatchConsumer(
        AmqpSettings(urls=("amqp://guest:guest@127.0.0.1:1/",)),
        TopologySettings(sensor_types=("speed",)),
        handler,
    )


def test_counters_are_read_from_the_stats_at_scrape_time(pipeline: ReadingPipeline) -> None:
    metrics = ConsumerMetrics()
    metrics.track(unconnected_consumer(pipeline), pipeline)
    pipeline.stats.stored = 7
    pipeline.stats.duplicates = 2
    pipeline.stats.invalid = 3
    pipeline.stats.expired = 1
    pipeline.stats.conflicts = 5
    pipeline.stats.storage_retries = 4
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "ev_consumer_readings_stored_total") == 7
    assert value(samples, "ev_consumer_readings_duplicate_total") == 2
    assert value(samples, "ev_consumer_readings_moved_aside_total", reason="invalid") == 3
    assert value(samples, "ev_consumer_readings_moved_aside_total", reason="expired") == 1
    assert value(samples, "ev_consumer_readings_moved_aside_total", reason="conflict") == 5
    assert value(samples, "ev_consumer_redis_errors_total") == 4
    for name in (
        "ev_consumer_deliveries_total",
        "ev_consumer_acked_total",
        "ev_consumer_batch_retries_total",
        "ev_consumer_failed_batches_total",
        "ev_consumer_requeued_total",
        "ev_consumer_broker_reconnects_total",
    ):
        assert value(samples, name) == 0, name
    stalled = value(samples, "ev_consumer_loop_stalled_seconds")
    assert stalled is not None
    assert stalled >= 0
    assert value(samples, "ev_consumer_info", version=__version__) == 1


def test_each_batch_is_timed_and_sized_even_when_it_raises() -> None:
    metrics = ConsumerMetrics()

    def failing(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        raise RuntimeError("boom")

    def accepting(_deliveries: Sequence[Delivery]) -> list[Rejection]:
        return []

    batch = [Delivery(delivery_tag=i, routing_key="ev.sensor.speed", body=b"{}") for i in (1, 2, 3)]
    assert metrics.timed(accepting)(batch) == []
    with pytest.raises(RuntimeError):
        metrics.timed(failing)(batch[:1])
    samples = parse(generate_latest(metrics.registry).decode())
    assert value(samples, "ev_consumer_batch_duration_seconds_count") == 2
    assert value(samples, "ev_consumer_batch_size_count") == 2
    assert value(samples, "ev_consumer_batch_size_sum") == 4


@pytest.mark.integration
def test_endpoint_shows_the_named_series_after_a_reading(
    start_consumer: Callable[..., ConsumerProcess], amqp_url: str
) -> None:
    port = free_port()
    consumer = start_consumer(METRICS_PORT=str(port), METRICS_QUEUE_POLL_S="0.2")
    publish(amqp_url, readings(1))
    invalid = json.dumps({"sensor_id": "ev_svc", "sensor_type": "speed", "value": "fast"})
    publish(amqp_url, [invalid.encode()])
    latest: Samples = {}

    def processed() -> bool:
        nonlocal latest
        latest = scrape(port)
        return (
            value(latest, "ev_consumer_readings_stored_total") == 1
            and value(latest, "ev_consumer_readings_moved_aside_total", reason="invalid") == 1
            and value(latest, "ev_consumer_acked_total") == 2
            and value(latest, "ev_queue_messages_ready", queue="ev.sensor.speed") == 0
            # Queues are polled one by one and quorum queues count asynchronously: wait for
            # the poll that saw the invalid message too, not just the first one after the ack.
            and value(latest, "ev_queue_messages_ready", queue="ev.sensors.invalid") == 1
        )

    wait_until(processed, 30, "the reading and the invalid message counted")
    assert value(latest, "ev_consumer_deliveries_total") == 2
    assert value(latest, "ev_consumer_readings_duplicate_total") == 0
    duration_count = value(latest, "ev_consumer_batch_duration_seconds_count")
    assert duration_count is not None
    assert duration_count >= 1
    assert value(latest, "ev_consumer_queue_poll_up") == 1
    assert value(latest, "ev_queue_consumers", queue="ev.sensor.speed") == 1
    assert value(latest, "ev_queue_messages_ready", queue="ev.sensors.invalid") == 1
    assert value(latest, "ev_queue_messages_ready", queue="ev.sensors.unrouted") == 0
    assert value(latest, "process_cpu_seconds_total") is not None
    assert consumer.stop() == 0, consumer.output()

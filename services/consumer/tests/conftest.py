"""Fixtures of the consumer's tests: the consumer as a process on the test's vhost and prefix."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _consumer_process import ConsumerProcess, queue_consumers, wait_until

TYPE_QUEUES = ("ev.sensor.speed", "ev.sensor.battery")


@pytest.fixture
def start_consumer(
    amqp_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., ConsumerProcess]]:
    """Start consumers (keyword arguments override environment variables); each is killed after
    the test if still running. Metrics are off and the heartbeat file is private unless set."""
    started: list[ConsumerProcess] = []
    target = urllib.parse.urlsplit(redis_url)

    def start(**overrides: str) -> ConsumerProcess:
        env = {
            **os.environ,
            "RABBITMQ_URLS": amqp_url,
            "REDIS_HOST": target.hostname or "127.0.0.1",
            "REDIS_PORT": str(target.port or 6379),
            "REDIS_KEY_PREFIX": key_prefix,
            "SENSOR_TYPES": "speed,battery",
            "CONSUMER_BATCH_MS": "20",
            "METRICS_PORT": "0",
            "CONSUMER_HEARTBEAT_FILE": str(tmp_path / f"heartbeat-{len(started)}"),
            **overrides,
        }
        consumer = ConsumerProcess(env, tmp_path / f"consumer-{len(started)}.log")
        started.append(consumer)
        # Consuming means the whole topology is declared, bindings included: a message
        # published before its queue is bound would go to ev.sensors.unrouted instead.
        wait_until(
            lambda: all(queue_consumers(amqp_url, queue) > 0 for queue in TYPE_QUEUES),
            30,
            "the consumer consuming",
        )
        return consumer

    yield start
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.process.kill()
            consumer.process.wait()

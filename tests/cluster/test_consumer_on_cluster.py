"""The consumer process storing into a three-master Redis Cluster (``REDIS_CLUSTER=true``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.cluster

from ev_consumer.settings import ConsumerSettings
from ev_messaging import AmqpSettings, Publisher, routing_key
from ev_schemas import Reading, default_catalogue
from ev_service import ConfigurationError, load_settings
from ev_storage import KeyLayout
from tests.cluster.redis_cluster import PrivateRedisCluster
from tests.support import consuming, free_port, wait_until

pytestmark = pytest.mark.integration

CATALOGUE = default_catalogue()
SENSORS = [f"ev_{n:03d}" for n in range(9)]  # on all three masters (test_storage_on_cluster)
PER_SENSOR = 20


class ConsumerProcess:
    """``python -m ev_consumer`` with its output in a log file; killed by the fixture at the end."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "ev_consumer"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def logged(self, text: str) -> Callable[[], bool]:
        """A condition for ``wait_until``: ``text`` appeared in the output."""
        return lambda: text in self.output()

    def stop(self) -> int:
        """SIGTERM; the exit status."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=20)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)


@pytest.fixture
def start_consumer(
    amqp_url: str, cluster_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., ConsumerProcess]]:
    started: list[ConsumerProcess] = []

    def start(**overrides: str) -> ConsumerProcess:
        env = {
            **os.environ,
            "RABBITMQ_URLS": amqp_url,
            "REDIS_CLUSTER": "true",
            "REDIS_HOST": "127.0.0.1",
            "REDIS_KEY_PREFIX": cluster_prefix,
            "CONSUMER_BATCH_MS": "20",
            "METRICS_PORT": "0",
            "CONSUMER_HEARTBEAT_FILE": str(tmp_path / f"heartbeat-{len(started)}"),
            "LOG_FORMAT": "text",
            **overrides,
        }
        process = ConsumerProcess(env, tmp_path / f"consumer-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def bodies() -> list[tuple[str, bytes]]:
    """Recent readings (not too old to keep) of every sensor, as publishers send them."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    return [
        (
            routing_key("speed"),
            Reading(
                sensor_id=sensor,
                sensor_type="speed",
                timestamp=start + timedelta(seconds=i),
                value=float(i),
                unit=CATALOGUE["speed"].unit,
            ).to_json(),
        )
        for sensor in SENSORS
        for i in range(PER_SENSOR)
    ]


def test_consumers_store_into_the_cluster(
    start_consumer: Callable[..., ConsumerProcess],
    redis_cluster: PrivateRedisCluster,
    cluster_client: redis.cluster.RedisCluster,
    cluster_prefix: str,
    amqp_url: str,
) -> None:
    """Two replicas share the queues; every reading is stored once, on whichever master."""
    seed = str(redis_cluster.seed[1])
    consumers = [start_consumer(REDIS_PORT=seed), start_consumer(REDIS_PORT=seed)]
    for consumer in consumers:
        wait_until(consumer.logged("consumer connected"), 60, "a consumer up")
    wait_until(consuming(amqp_url, ["ev.sensor.speed"]), 30, "the consumers consuming")
    with Publisher(AmqpSettings(urls=(amqp_url,))) as publisher:
        for key, body in bodies():
            publisher.publish(key, body)
        publisher.flush(timeout=30)
    keys = KeyLayout(cluster_prefix)

    def all_stored() -> bool:
        counts = [cluster_client.hget(keys.summary(sensor), "speed:count") for sensor in SENSORS]
        return counts == [str(PER_SENSOR).encode()] * len(SENSORS)

    wait_until(all_stored, 60, "every reading stored once")
    for consumer in consumers:
        assert consumer.stop() == 0, consumer.output()


def test_no_seed_node_answering_exits_with_one_line(
    start_consumer: Callable[..., ConsumerProcess],
) -> None:
    consumer = start_consumer(REDIS_PORT=str(free_port()))
    assert consumer.popen.wait(timeout=60) == 1, consumer.output()
    assert "no Redis Cluster seed node answered" in consumer.output()


def test_a_cluster_has_database_zero_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_CLUSTER", "true")
    monkeypatch.setenv("REDIS_DB", "1")
    with pytest.raises(ConfigurationError, match="database 0 only"):
        load_settings(ConsumerSettings)

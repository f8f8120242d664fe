"""Each image's own command line starts its service here, against the local RabbitMQ and Redis.

The argv and ENV come from the final stage of ``services/<name>/Dockerfile``; only what compose
would set per deployment (broker and Redis addresses, ports, key prefix) is added, so a command or
variable that breaks in the image breaks here too. Each service is then proven to work, its
HEALTHCHECK run as Docker would run it, and SIGTERM (`docker stop`) must end it cleanly.
"""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pika
import pytest
import redis

from ev_messaging import EXCHANGE, INVALID_QUEUE, UNROUTED_QUEUE, TopologySettings, routing_key
from ev_schemas import default_catalogue
from ev_storage import KeyLayout
from tests.containers.support import (
    Launcher,
    ServiceProcess,
    healthcheck,
    image,
    redis_settings,
    resolve,
)
from tests.support import consuming, free_port, poll_until, wait_until

pytestmark = pytest.mark.integration

#: How long a service may take to become healthy here (the images allow 20-30 s start periods).
START_S = 30.0
#: Docker runs a check every interval; polling faster only spawns more processes.
CHECK_EVERY_S = 0.5


def wait_healthy(process: ServiceProcess, env: dict[str, str]) -> None:
    """Run the image's HEALTHCHECK until it passes, failing if the service dies meanwhile."""
    last = ""

    def passes() -> bool:
        nonlocal last
        process.assert_running()
        passed, last = healthcheck(image(process.name), env)
        return passed

    if not poll_until(passes, START_S, interval=CHECK_EVERY_S):
        raise AssertionError(
            f"{process.name}'s HEALTHCHECK still fails after {START_S:g} s: {last}\n{process.log()}"
        )


def publish(amqp_url: str, sensor_type: str, body: bytes) -> None:
    """Publish one reading as the contract says, waiting for the broker's confirm."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            EXCHANGE,
            routing_key(sensor_type),
            body,
            pika.BasicProperties(delivery_mode=2, content_type="application/json"),
            mandatory=True,
        )
    finally:
        connection.close()


def queue_depths(amqp_url: str, queues: list[str]) -> dict[str, int]:
    """Messages ready per queue (every queue must exist)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        return {
            queue: int(channel.queue_declare(queue, passive=True).method.message_count)
            for queue in queues
        }
    finally:
        connection.close()


def test_api_image_serves_and_passes_its_healthcheck(
    launcher: Launcher, redis_url: str, key_prefix: str
) -> None:
    settings = {
        **redis_settings(redis_url, key_prefix),
        # The image listens on 0.0.0.0:8000 for the container network; here, a private port.
        "API_HOST": "127.0.0.1",
        "API_PORT": str(free_port()),
    }
    api = launcher.start("api", settings)
    wait_healthy(api, launcher.env("api", settings))

    base = f"http://127.0.0.1:{settings['API_PORT']}"
    answer = httpx.get(f"{base}/api/v1/sensor/ev_container_none", timeout=10)
    assert answer.status_code == 404
    assert "detail" in answer.json()

    # uvicorn re-raises SIGTERM after its graceful shutdown: -15 here; as a container's PID 1,
    # where a signal without a handler is ignored, the same shutdown ends with status 0.
    assert api.stop() in (0, -signal.SIGTERM), api.log()


def test_consumer_image_stores_a_reading_and_passes_its_healthcheck(
    launcher: Launcher, amqp_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    settings = {
        **redis_settings(redis_url, key_prefix),
        "RABBITMQ_URLS": amqp_url,
        # The image serves metrics on 0.0.0.0:9102 for the container network; here, a private
        # port, and a heartbeat file no other consumer on this machine writes.
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(metrics_port),
        "CONSUMER_HEARTBEAT_FILE": str(tmp_path / "consumer.heartbeat"),
    }
    consumer = launcher.start("consumer", settings)
    wait_healthy(consumer, launcher.env("consumer", settings))
    # Healthy means the process runs; consuming means the topology is declared, bindings too.
    wait_until(consuming(amqp_url, ["ev.sensor.battery"]), 30, "the consumer consuming")

    stamp = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reading = {
        "sensor_id": "ev_container_1",
        "sensor_type": "battery",
        "timestamp": stamp,
        "value": 85.5,
        "unit": "percentage",
    }
    publish(amqp_url, "battery", json.dumps(reading).encode())
    key = KeyLayout(key_prefix).latest("ev_container_1", "battery")
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: client.exists(key) == 1, 30, f"the consumer to store {key}")
        stored = json.loads(client.get(key) or b"{}")
    finally:
        client.close()
    assert stored["value"] == 85.5
    assert stored["timestamp"] == stamp

    passed, output = healthcheck(image("consumer"), launcher.env("consumer", settings))
    assert passed, output
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert consumer.stop() == 0, consumer.log()


def test_simulator_image_publishes_a_count_and_exits_0(
    launcher: Launcher, amqp_url: str, tmp_path: Path
) -> None:
    count = 25
    settings = {
        "RABBITMQ_URLS": amqp_url,
        "SIMULATOR_VEHICLES": "3",
        "SIMULATOR_COUNT": str(count),
        "SIMULATOR_RATE": "0",
        "SIMULATOR_SEED": "7",
        "SIMULATOR_DECLARE_TOPOLOGY": "true",
    }
    env = launcher.env("simulator", settings)
    done = subprocess.run(
        resolve(image("simulator").argv, env),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    queues = list(TopologySettings.from_types(default_catalogue()).queues)
    depths = queue_depths(amqp_url, [*queues, UNROUTED_QUEUE, INVALID_QUEUE])
    assert sum(depths[queue] for queue in queues) == count, depths
    assert depths[UNROUTED_QUEUE] == depths[INVALID_QUEUE] == 0


def test_simulator_image_stops_cleanly_on_sigterm(launcher: Launcher, amqp_url: str) -> None:
    """The compose service publishes until stopped: `docker compose stop` must end it with 0."""
    settings = {
        "RABBITMQ_URLS": amqp_url,
        "SIMULATOR_VEHICLES": "2",
        "SIMULATOR_RATE": "50",
        "SIMULATOR_DECLARE_TOPOLOGY": "true",
    }
    simulator = launcher.start("simulator", settings)
    queues = list(TopologySettings.from_types(default_catalogue()).queues)

    def published() -> bool:
        simulator.assert_running()
        try:
            return sum(queue_depths(amqp_url, queues).values()) > 0
        except pika.exceptions.ChannelClosedByBroker:  # topology not declared yet
            return False

    assert poll_until(published, START_S, interval=0.2), simulator.log()
    assert simulator.stop() == 0, simulator.log()

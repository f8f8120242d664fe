"""The consumer as a process, the way operators run it: signals, exit codes, nothing acked early."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika
import pytest
import redis

MINUTE_AGO = datetime.now(UTC) - timedelta(minutes=1)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def readings(count: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "sensor_id": "ev_svc",
                "sensor_type": "speed",
                "timestamp": (MINUTE_AGO + timedelta(milliseconds=i)).isoformat(),
                "value": float(i % 200),
                "unit": "km/h",
            }
        ).encode()
        for i in range(count)
    ]


def publish(amqp_url: str, bodies: list[bytes]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish("ev.sensors", "ev.sensor.speed", body, mandatory=True)
    connection.close()


def ready_messages(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    except pika.exceptions.ChannelClosedByBroker:
        return -1
    finally:
        if connection.is_open:
            connection.close()


class ConsumerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ev_consumer"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self, timeout: float = 10) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(
                f"no exit within {timeout} s of SIGTERM:\n{self.output()}"
            ) from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_consumer(
    amqp_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., ConsumerProcess]]:
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
            **overrides,
        }
        consumer = ConsumerProcess(env, tmp_path / f"consumer-{len(started)}.log")
        started.append(consumer)
        wait_until(lambda: ready_messages(amqp_url, "ev.sensor.speed") >= 0, 30, "topology")
        return consumer

    yield start
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.process.kill()
            consumer.process.wait()


@pytest.mark.integration
def test_stores_everything_and_exits_zero_on_sigterm(
    start_consumer: Callable[..., ConsumerProcess], amqp_url: str, redis_url: str, key_prefix: str
) -> None:
    consumer = start_consumer()
    publish(amqp_url, readings(2000))
    client = redis.Redis.from_url(redis_url)
    summary = f"{key_prefix}sensor:{{ev_svc}}:summary"
    wait_until(lambda: client.hget(summary, "speed:count") == b"2000", 30, "2000 readings stored")
    assert consumer.stop() == 0, consumer.output()
    assert ready_messages(amqp_url, "ev.sensor.speed") == 0
    client.close()


@pytest.mark.integration
def test_nothing_is_acknowledged_while_redis_is_down(
    start_consumer: Callable[..., ConsumerProcess], amqp_url: str
) -> None:
    consumer = start_consumer(REDIS_PORT="1")
    publish(amqp_url, readings(50))
    # The consumer takes the messages but, unable to store them, must not acknowledge them.
    wait_until(lambda: ready_messages(amqp_url, "ev.sensor.speed") == 0, 30, "delivery")
    wait_until(lambda: "Redis unavailable" in consumer.output(), 30, "a retry")
    assert consumer.stop() == 0, consumer.output()
    wait_until(lambda: ready_messages(amqp_url, "ev.sensor.speed") == 50, 30, "messages back")


@pytest.mark.integration
def test_wrong_credentials_exit_with_a_clear_message(
    amqp_url: str, redis_url: str, tmp_path: Path
) -> None:
    url = urllib.parse.urlsplit(amqp_url)
    wrong = urllib.parse.urlunsplit(url._replace(netloc=f"guest:wrong@{url.hostname}:{url.port}"))
    env = {
        **os.environ,
        "RABBITMQ_URLS": wrong,
        "REDIS_PORT": str(urllib.parse.urlsplit(redis_url).port),
    }
    result = subprocess.run(
        [sys.executable, "-m", "ev_consumer"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "refused the credentials" in result.stderr
    assert "wrong" not in result.stderr  # the password is never logged

"""The consumer as a process, the way operators run it: signals, exit codes, nothing acked early."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from _consumer_process import ConsumerProcess, publish, readings, ready_messages, wait_until


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
        "METRICS_PORT": "0",
        "CONSUMER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "ev_consumer"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "refused the credentials" in result.stderr
    assert "wrong" not in result.stderr  # the password is never logged

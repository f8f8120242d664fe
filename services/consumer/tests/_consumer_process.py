"""The consumer as a child process, and the broker-side helpers its tests share.

A module of its own (``conftest.py`` is not importable by name); the fixture is in conftest.py.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika

MINUTE_AGO = datetime.now(UTC) - timedelta(minutes=1)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds (polled, never slept on)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    if not poll_until(condition, timeout):
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


def publish(amqp_url: str, bodies: list[bytes], routing_key: str = "ev.sensor.speed") -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish("ev.sensors", routing_key, body, mandatory=True)
    connection.close()


def ready_messages(amqp_url: str, queue: str) -> int:
    """Messages ready in ``queue``; -1 while it does not exist."""
    return _queue_counts(amqp_url, queue)[0]


def queue_consumers(amqp_url: str, queue: str) -> int:
    """Consumers attached to ``queue``; -1 while it does not exist."""
    return _queue_counts(amqp_url, queue)[1]


def _queue_counts(amqp_url: str, queue: str) -> tuple[int, int]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        method = connection.channel().queue_declare(queue, passive=True).method
        return int(method.message_count), int(method.consumer_count)
    except pika.exceptions.ChannelClosedByBroker:
        return -1, -1
    finally:
        if connection.is_open:
            connection.close()


class ConsumerProcess:
    """``python -m ev_consumer`` with its output in ``log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ev_consumer"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def check(self) -> subprocess.CompletedProcess[str]:
        """``python -m ev_consumer --check`` with this consumer's environment."""
        return subprocess.run(
            [sys.executable, "-m", "ev_consumer", "--check"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
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

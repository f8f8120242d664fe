"""Fixtures of the ev-messaging tests: settings for each test's private vhost, and a ``broker``
probe to inspect queues and to kill connections the way a broker restart or a network would."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from ev_messaging import AmqpSettings, TopologySettings, declare_topology

TYPES = ("battery", "speed")


@dataclass(frozen=True)
class Message:
    """A message read back from a queue."""

    routing_key: str
    body: bytes
    properties: Any
    redelivered: bool


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class Broker:
    """Inspection and fault injection on one test's vhost."""

    wait_for = staticmethod(wait_for)

    def __init__(self, settings: AmqpSettings, channel: BlockingChannel) -> None:
        self.settings = settings
        self.channel = channel
        self.vhost = urllib.parse.unquote(urllib.parse.urlsplit(settings.urls[0]).path[1:])

    def depth(self, queue: str) -> int:
        """Ready messages in ``queue``."""
        return int(self.channel.queue_declare(queue, passive=True).method.message_count)

    def drain(self, queue: str, count: int, timeout: float = 10.0) -> list[Message]:
        """Take exactly ``count`` messages from ``queue`` (acked), waiting for them."""
        taken: list[Message] = []
        deadline = time.monotonic() + timeout
        for method, properties, body in self.channel.consume(
            queue, auto_ack=True, inactivity_timeout=0.05
        ):
            if method is not None:
                taken.append(Message(method.routing_key, body, properties, method.redelivered))
            if len(taken) >= count or time.monotonic() > deadline:
                break
        self.channel.cancel()
        assert len(taken) == count, f"expected {count} message(s) in {queue}, got {len(taken)}"
        return taken

    def publish(self, routing_key: str, body: bytes, **properties: Any) -> None:
        """A plain publish to ``ev.sensors``, for consumer tests."""
        props = pika.BasicProperties(delivery_mode=2, **properties)
        self.channel.basic_publish("ev.sensors", routing_key, body, props)

    def kill_connections(self, client_name: str) -> int:
        """Force-close the vhost's connections named ``client_name``; how many there were."""
        listed = self._ctl("list_connections", "-p", self.vhost, "pid", "client_properties")
        pids = [
            line.split("\t", 1)[0]
            for line in listed.splitlines()
            if f'{{"connection_name","{client_name}"}}' in line
        ]
        for pid in pids:
            self._ctl("close_connection", pid, "test: connection killed")
        return len(pids)

    @staticmethod
    def _ctl(*args: str) -> str:
        exe = shutil.which("rabbitmqctl")
        assert exe is not None
        done = subprocess.run([exe, "-q", *args], check=True, capture_output=True, text=True)
        return done.stdout


@pytest.fixture
def client_name() -> str:
    return f"evtest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(amqp_url: str, client_name: str) -> AmqpSettings:
    return AmqpSettings(urls=(amqp_url,), client_name=client_name, retry_delay=0.05)


@pytest.fixture
def topology() -> TopologySettings:
    return TopologySettings(TYPES, delivery_limit=2)


@pytest.fixture
def broker(amqp_url: str, topology: TopologySettings) -> Iterator[Broker]:
    """A probe on the test's vhost, with the topology declared."""
    probe_settings = AmqpSettings(urls=(amqp_url,), client_name="evtest-probe")
    connection = pika.BlockingConnection(probe_settings.parameters())
    try:
        channel = connection.channel()
        declare_topology(channel, topology)
        yield Broker(probe_settings, channel)
    finally:
        if connection.is_open:
            connection.close()

"""Connecting past a node that accepts TCP and resets it at once (a broker or proxy going away).

pika then fails in several ways, one of them a ValueError from deep in its connection workflow
("Expected connected socket, but getpeername() failed"), a race that shows about once in 40
attempts here: both clients must take every one of them as "this node is unavailable".
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from ev_messaging import AmqpSettings, BatchConsumer, TopologySettings
from ev_messaging.link import connect

pytestmark = pytest.mark.integration

ATTEMPTS = 60


@pytest.fixture
def resetting_port() -> Iterator[int]:
    """A loopback port whose listener accepts each connection and resets it (RST)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                peer, _ = listener.accept()
            except TimeoutError:
                continue
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(timeout=5)
        listener.close()


def _with_port(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _settings(amqp_url: str, port: int) -> AmqpSettings:
    return AmqpSettings(
        urls=(_with_port(amqp_url, port), amqp_url), client_name="evtest-reset", retry_delay=0.05
    )


def test_the_consumer_connects_past_a_resetting_node_every_time(
    amqp_url: str, resetting_port: int, topology: TopologySettings
) -> None:
    consumer = BatchConsumer(_settings(amqp_url, resetting_port), topology, lambda _batch: [])
    for _ in range(ATTEMPTS):
        connection, _index = consumer._connect()
        assert connection.is_open
        connection.close()


def test_the_publisher_connects_past_a_resetting_node_every_time(
    amqp_url: str, resetting_port: int, topology: TopologySettings
) -> None:
    settings = _settings(amqp_url, resetting_port)
    for _ in range(ATTEMPTS):
        link = connect(
            settings,
            topology,
            lambda *_confirm: None,
            lambda *_returned: None,
            time.monotonic() + 10,
        )
        assert link.usable
        link.close()

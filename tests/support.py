"""Helpers shared by the repository-level test suites (tests/e2e, tests/faults)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable

import pika


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds (polled, never slept on)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    if not poll_until(condition, timeout):
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in ``queue``; -1 while it does not exist."""
    return _queue_counts(amqp_url, queue)[0]


def queue_consumers(amqp_url: str, queue: str) -> int:
    """Consumers attached to ``queue``; -1 while it does not exist."""
    return _queue_counts(amqp_url, queue)[1]


def consuming(amqp_url: str, queues: Iterable[str]) -> Callable[[], bool]:
    """A condition: every one of ``queues`` has a consumer. The consumer declares the whole
    topology, bindings included, before it consumes: a message published as soon as a queue
    merely exists could still go to ``ev.sensors.unrouted``."""
    wanted = tuple(queues)
    return lambda: all(queue_consumers(amqp_url, queue) > 0 for queue in wanted)


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

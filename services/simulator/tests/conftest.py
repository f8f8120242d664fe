"""Helpers for the simulator's integration tests: reading queue depths on the private vhost."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import pika
import pytest

QueueDepths = Callable[[Iterable[str]], dict[str, int]]


def queue_depths(amqp_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Messages ready in each queue (passive declares: a missing queue fails the test)."""
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        return {
            name: int(channel.queue_declare(name, passive=True).method.message_count)
            for name in queues
        }


def settled_depths(
    amqp_url: str, queues: Iterable[str], total: int, timeout: float = 10.0
) -> dict[str, int]:
    """Queue depths once they add up to ``total`` (quorum queues count asynchronously)."""
    names = list(queues)
    deadline = time.monotonic() + timeout
    while True:
        depths = queue_depths(amqp_url, names)
        if sum(depths.values()) >= total or time.monotonic() > deadline:
            return depths
        time.sleep(0.05)


@pytest.fixture
def depths(amqp_url: str) -> Callable[[Iterable[str], int], dict[str, int]]:
    return lambda queues, total: settled_depths(amqp_url, queues, total)

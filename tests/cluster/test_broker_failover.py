"""Consumers and publishers given several broker addresses (``RABBITMQ_URLS``) fail over in order.

A RabbitMQ cluster gives every node's address; here two forwarders in front of the one test broker
stand in for two nodes, so that "the first node dies" is ``refuse()`` on the first forwarder (its
connections reset, new ones refused). That checks the clients' side, the order in which they try
the addresses, in a second and without three Erlang VMs. The broker's side, quorum queues electing
new leaders when a real node is killed, is test_rabbitmq_cluster.py's, on three private nodes.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from ev_messaging import (
    AmqpSettings,
    BatchConsumer,
    Delivery,
    Publisher,
    Rejection,
    TopologySettings,
    routing_key,
)
from ev_messaging.settings import safe_url
from tests.faults.forwarder import Forwarder
from tests.support import free_port, wait_until

pytestmark = pytest.mark.integration

TOPOLOGY = TopologySettings(("battery", "speed"))


class Recorder:
    """A batch handler that keeps every body it was given (thread-safe for the test to read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: set[bytes] = set()

    def __call__(self, deliveries: Sequence[Delivery]) -> Sequence[Rejection]:
        with self._lock:
            self._bodies.update(delivery.body for delivery in deliveries)
        return []

    def has(self, bodies: set[bytes]) -> bool:
        with self._lock:
            return bodies <= self._bodies


@contextmanager
def running(consumer: BatchConsumer) -> Iterator[None]:
    """Run the consumer in a thread; stop it, and surface what it raised, on exit."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        consumer.stop()
        thread.join(timeout=15)
    assert not thread.is_alive(), "run() did not return after stop()"
    if errors:
        raise errors[0]


def at_port(amqp_url: str, port: int) -> str:
    """``amqp_url`` (credentials and vhost) at another loopback port."""
    parts = urllib.parse.urlsplit(amqp_url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def broker_port(amqp_url: str) -> int:
    return urllib.parse.urlsplit(amqp_url).port or 5672


def publish(publisher: Publisher, start: int, count: int) -> set[bytes]:
    bodies = {f"reading-{n}".encode() for n in range(start, start + count)}
    for body in sorted(bodies):
        publisher.publish(routing_key("battery"), body)
    publisher.flush(timeout=30)
    return bodies


def settings(*urls: str, name: str) -> AmqpSettings:
    return AmqpSettings(urls=urls, client_name=name, retry_delay=0.05, max_retry_delay=0.5)


def test_dead_addresses_before_the_live_broker_are_skipped(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One address refuses, the next accepts and closes at once, the third is the broker."""
    caplog.set_level(logging.INFO, logger="ev_messaging.consumer")
    with Forwarder(free_port()) as accepts_and_closes:
        urls = (
            at_port(amqp_url, free_port()),
            at_port(amqp_url, accepts_and_closes.port),
            amqp_url,
        )
        recorder = Recorder()
        consumer = BatchConsumer(
            settings(*urls, name="evtest-consumer"), TOPOLOGY, recorder, batch_max_wait=0.05
        )
        with (
            running(consumer),
            Publisher(settings(*urls, name="evtest-publisher"), topology=TOPOLOGY) as publisher,
        ):
            sent = publish(publisher, 0, 50)
            wait_until(lambda: recorder.has(sent), 30, "every message consumed")
        assert accepts_and_closes.stats.upstream_failures >= 2  # both clients tried it first
    connected = [r.getMessage() for r in caplog.records if "consumer connected" in r.getMessage()]
    assert connected == [f"consumer connected to {safe_url(amqp_url)}"]  # the node it reached


def test_losing_the_first_broker_mid_run_fails_over_to_the_second(amqp_url: str) -> None:
    with Forwarder(broker_port(amqp_url)) as first, Forwarder(broker_port(amqp_url)) as second:
        urls = (at_port(amqp_url, first.port), at_port(amqp_url, second.port))
        recorder = Recorder()
        consumer = BatchConsumer(
            settings(*urls, name="evtest-consumer"), TOPOLOGY, recorder, batch_max_wait=0.05
        )
        with (
            running(consumer),
            Publisher(settings(*urls, name="evtest-publisher"), topology=TOPOLOGY) as publisher,
        ):
            before = publish(publisher, 0, 50)
            wait_until(lambda: recorder.has(before), 30, "the first part consumed")
            assert second.stats.accepted == 0, "both clients started on the first address"

            first.refuse()  # the first node is gone: connections reset, new ones refused
            after = publish(publisher, 50, 50)
            wait_until(lambda: recorder.has(after), 30, "the rest consumed through the second")
            assert second.connections >= 2, "consumer and publisher moved to the second address"

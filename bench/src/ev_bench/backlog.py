"""Traffic for the drains: the simulator's fleet, published by a bare pika publisher.

The bodies are made by the product's load generator (``ev_simulator.Fleet``), rendered once
up front, so the publisher loop times nothing but AMQP. The bare publisher sends with the
product's properties (persistent, JSON) and no confirms; it is the ceiling the simulator's
confirmed publishing is compared to, and it fills the backlogs the consumers drain.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ev_bench.errors import BenchError
from ev_bench.stats import rate
from ev_messaging import CONTENT_TYPE, EXCHANGE, TopologySettings, declare_topology
from ev_schemas import default_catalogue
from ev_simulator import Simulation

#: (routing key, body) of one message.
Outgoing = tuple[str, bytes]

_POLL_S = 0.01


def topology() -> TopologySettings:
    """Exactly what the consumer declares with its defaults: every catalogue type, quorum."""
    return TopologySettings.from_types(default_catalogue())


def fleet_messages(count: int, *, vehicles: int, seed: int, id_prefix: str) -> list[Outgoing]:
    """``count`` valid readings of a simulated fleet, with timestamps ending about now."""
    simulation = Simulation(
        vehicles=vehicles, seed=seed, count=count, rate=0.0, id_prefix=id_prefix
    )
    return [(message.routing_key, message.body) for message in simulation.fleet().messages(count)]


def sensor_ids_of(messages: Sequence[Outgoing]) -> list[str]:
    """The distinct sensor ids in ``messages`` (fleet bodies start with ``{"sensor_id":"...``)."""
    found: dict[str, None] = {}
    for _key, body in messages:
        start = body.index(b'"sensor_id":"') + 13
        found[body[start : body.index(b'"', start)].decode()] = None
    return list(found)


def connect(url: str) -> pika.BlockingConnection:
    try:
        return pika.BlockingConnection(pika.URLParameters(url))
    except pika.exceptions.AMQPError as exc:
        raise BenchError(f"cannot connect to RabbitMQ: {exc!r}") from exc


def declare(url: str) -> None:
    """Declare the product's topology in the vhost of ``url``."""
    connection = connect(url)
    try:
        declare_topology(connection.channel(), topology())
    finally:
        connection.close()


def queue_counts(channel: BlockingChannel, queues: Sequence[str]) -> tuple[int, int]:
    """(ready messages, consumers) summed over ``queues``."""
    ready = consumers = 0
    for queue in queues:
        method = channel.queue_declare(queue, passive=True).method
        ready += int(method.message_count)
        consumers += int(method.consumer_count)
    return ready, consumers


@dataclass(frozen=True, slots=True)
class PublishResult:
    """How long a bare publisher took until every message was ready in its queue."""

    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return rate(self.count, self.seconds)


def publish_bare(
    url: str, messages: Sequence[Outgoing], *, timeout: float = 120.0
) -> PublishResult:
    """Publish without confirms as fast as pika goes; timed until the queues hold them all.

    Waiting for the queue depth makes the figure the rate the broker absorbed, not the rate at
    which bytes left the socket buffer (which would flatter a publisher without confirms).
    """
    properties = pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent, content_type=CONTENT_TYPE
    )
    queues = topology().queues
    connection = connect(url)
    try:
        channel = connection.channel()
        declare_topology(channel, topology())
        before, _ = queue_counts(channel, queues)
        publish = channel.basic_publish
        started = time.perf_counter()
        for key, body in messages:
            publish(EXCHANGE, key, body, properties)
        deadline = time.monotonic() + timeout
        while queue_counts(channel, queues)[0] - before < len(messages):
            if time.monotonic() > deadline:
                raise BenchError(f"the broker did not take {len(messages)} messages in {timeout}s")
            connection.sleep(_POLL_S)
        return PublishResult(len(messages), time.perf_counter() - started)
    finally:
        connection.close()


def wait_for_consumers(url: str, wanted: int, *, timeout: float = 30.0) -> None:
    """Wait until every type queue has at least ``wanted`` consumers (a consumer is ready)."""
    queues = topology().queues
    connection = connect(url)
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while True:
            counts = [channel.queue_declare(q, passive=True).method.consumer_count for q in queues]
            if min(counts) >= wanted:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"no {wanted} consumer(s) on every queue within {timeout:g}s")
            connection.sleep(0.05)
    finally:
        connection.close()

"""The RabbitMQ topology of the pipeline: every exchange, queue, key and header name lives here.

``ev.sensors`` (direct) routes ``ev.sensor.<type>`` to one quorum queue per configured type. A key
with no queue goes through the alternate exchange ``ev.sensors.unrouted`` (fanout) into the queue of
the same name, so unknown types are kept, never dropped. The consumer moves invalid messages to
``ev.sensors.invalid``; a message that keeps failing reaches it too, by dead-lettering, once it has
been delivered ``delivery_limit`` times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ev_messaging.errors import MessagingError, TopologyError, from_pika
from ev_schemas.catalogue import SENSOR_TYPE_PATTERN

EXCHANGE = "ev.sensors"
UNROUTED_EXCHANGE = "ev.sensors.unrouted"
UNROUTED_QUEUE = "ev.sensors.unrouted"
INVALID_QUEUE = "ev.sensors.invalid"
ROUTING_KEY_PREFIX = "ev.sensor."

#: Header carrying the original routing key of a message moved to the invalid queue.
HEADER_ROUTING_KEY = "x-ev-routing-key"
#: Header carrying the human-readable reason a message was moved to the invalid queue.
HEADER_ERROR = "x-ev-error"

DEFAULT_DELIVERY_LIMIT = 10


@dataclass(frozen=True, slots=True)
class TopologySettings:
    """Which sensor types get a queue, and how often a message may be delivered before it is
    moved aside to the invalid queue."""

    sensor_types: tuple[str, ...]
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT

    def __post_init__(self) -> None:
        if isinstance(cast(object, self.sensor_types), str) or not self.sensor_types:
            raise MessagingError("sensor_types must be a non-empty tuple of type names")
        for name in self.sensor_types:
            if not SENSOR_TYPE_PATTERN.fullmatch(name):
                raise MessagingError(f"invalid sensor type name {name!r}")
        if len(set(self.sensor_types)) != len(self.sensor_types):
            raise MessagingError(f"duplicate sensor types in {self.sensor_types!r}")
        if self.delivery_limit < 1:
            raise MessagingError(f"delivery_limit must be >= 1, not {self.delivery_limit}")

    @classmethod
    def from_types(
        cls, sensor_types: Iterable[str], *, delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    ) -> TopologySettings:
        """From any iterable of names, e.g. an ``ev_schemas.Catalogue`` (iterates its names)."""
        return cls(tuple(sensor_types), delivery_limit=delivery_limit)

    @property
    def queues(self) -> tuple[str, ...]:
        """The per-type queue names, in configuration order."""
        return tuple(routing_key(name) for name in self.sensor_types)


def routing_key(sensor_type: str) -> str:
    """The routing key (and queue name) of a sensor type: ``ev.sensor.<type>``."""
    return f"{ROUTING_KEY_PREFIX}{sensor_type}"


def sensor_type_from_routing_key(key: str) -> str | None:
    """The sensor type named by a routing key, or None when the key is not ``ev.sensor.<type>``."""
    if not key.startswith(ROUTING_KEY_PREFIX):
        return None
    name = key[len(ROUTING_KEY_PREFIX) :]
    return name if SENSOR_TYPE_PATTERN.fullmatch(name) else None


def queue_arguments(delivery_limit: int | None = None) -> dict[str, Any]:
    """Arguments of every queue we declare; with ``delivery_limit``, those of a type queue.

    All queues are quorum queues (replicated, and the only kind with a delivery limit). A type
    queue dead-letters a message delivered ``delivery_limit`` times to the invalid queue, so a
    poison message is moved aside instead of looping forever. ``at-least-once`` dead-lettering
    cannot lose the message between the two queues; RabbitMQ requires ``reject-publish`` overflow
    for it (with no length limit set, overflow never triggers).
    """
    arguments: dict[str, Any] = {"x-queue-type": "quorum"}
    if delivery_limit is not None:
        arguments |= {
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": INVALID_QUEUE,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    return arguments


def declare_topology(channel: BlockingChannel, settings: TopologySettings) -> None:
    """Declare every exchange, queue and binding; idempotent, for publishers and the consumer.

    A declaration the broker refuses (typically a queue that exists with other arguments) raises
    :class:`TopologyError`; the channel is then closed by the broker.
    """
    try:
        channel.exchange_declare(UNROUTED_EXCHANGE, exchange_type="fanout", durable=True)
        channel.exchange_declare(
            EXCHANGE,
            exchange_type="direct",
            durable=True,
            arguments={"alternate-exchange": UNROUTED_EXCHANGE},
        )
        channel.queue_declare(UNROUTED_QUEUE, durable=True, arguments=queue_arguments())
        channel.queue_bind(UNROUTED_QUEUE, UNROUTED_EXCHANGE, routing_key="")
        # The invalid queue first: type queues dead-letter into it.
        channel.queue_declare(INVALID_QUEUE, durable=True, arguments=queue_arguments())
        for name in settings.queues:
            channel.queue_declare(
                name, durable=True, arguments=queue_arguments(settings.delivery_limit)
            )
            channel.queue_bind(name, EXCHANGE, routing_key=name)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 406:  # PRECONDITION_FAILED: exists with other arguments
            raise TopologyError(f"broker refused the topology: {exc.reply_text}") from exc
        raise from_pika(exc) from exc
    except pika.exceptions.AMQPError as exc:
        raise from_pika(exc) from exc

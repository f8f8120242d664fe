"""What a batch handler sees (:class:`Delivery`) and answers (:class:`Rejection`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import pika

from ev_messaging.topology import HEADER_ERROR, HEADER_ROUTING_KEY

#: Longest ``x-ev-error`` header we write; a reason is for humans, not a dump.
MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message taken from a type queue. ``delivery_tag`` is only meaningful to the runner."""

    delivery_tag: int
    routing_key: str
    body: bytes
    message_id: str | None = None
    headers: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    redelivered: bool = False
    content_type: str | None = None
    # The broker's properties, kept to republish an invalid message as it came.
    properties: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_pika(cls, method: Any, properties: Any, body: bytes) -> Delivery:
        """From the arguments of a pika ``on_message_callback``."""
        return cls(
            delivery_tag=method.delivery_tag,
            routing_key=method.routing_key,
            body=body,
            message_id=properties.message_id,
            headers=MappingProxyType(dict(properties.headers or {})),
            redelivered=bool(method.redelivered),
            content_type=properties.content_type,
            properties=properties,
        )


@dataclass(frozen=True, slots=True)
class Rejection:
    """A delivery the handler found invalid, and why (goes into the ``x-ev-error`` header)."""

    delivery: Delivery
    reason: str


class BatchHandler(Protocol):
    """Processes a batch; returns the invalid deliveries, or raises ``Retry`` to get it again."""

    def __call__(self, deliveries: Sequence[Delivery], /) -> Sequence[Rejection]: ...


def truncate(reason: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """``reason`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def invalid_properties(rejection: Rejection, limit: int = MAX_ERROR_LENGTH) -> pika.BasicProperties:
    """Properties to move a rejected message to the invalid queue: the original ones (persistent)
    plus ``x-ev-routing-key`` and ``x-ev-error``.

    ``expiration`` is dropped so the message waits for a human, and ``user_id`` because the broker
    refuses one that is not the publishing connection's user.
    """
    delivery = rejection.delivery
    original = delivery.properties or pika.BasicProperties(
        content_type=delivery.content_type, message_id=delivery.message_id
    )
    headers = dict(delivery.headers)
    headers[HEADER_ROUTING_KEY] = delivery.routing_key
    headers[HEADER_ERROR] = truncate(rejection.reason, limit)
    return pika.BasicProperties(
        content_type=original.content_type,
        content_encoding=original.content_encoding,
        headers=headers,
        delivery_mode=pika.DeliveryMode.Persistent,
        priority=original.priority,
        correlation_id=original.correlation_id,
        reply_to=original.reply_to,
        message_id=original.message_id,
        timestamp=original.timestamp,
        type=original.type,
        app_id=original.app_id,
        cluster_id=original.cluster_id,
    )

"""Bookkeeping of publisher confirms: which sent messages await their ack, and what failed.

Kept apart from the connection handling so the rules (acks with ``multiple``, returns matched to
their message, failures reported once) are plain logic, testable without a broker.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass

import pika

from ev_messaging.errors import MessagingError, PublishNacked, Unroutable

logger = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)  # identity matters: equal messages are still distinct sends
class Outgoing:
    """One accepted message, kept until the broker confirms it."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    returned: str | None = None  # the broker's reason, once a basic.return named this message
    sends: int = 0
    nacks: int = 0
    tag: int = 0  # the delivery tag of its latest send

    def unroutable(self, reason: str) -> Unroutable:
        return Unroutable(
            self.routing_key,
            exchange=self.exchange,
            message_id=self.properties.message_id,
            reason=reason,
        )


class Confirms:
    """Messages sent on the current channel, by delivery tag, until acked or nacked.

    A nacked message is sent again up to ``nack_retries`` times (it waits in ``retries`` for the
    next channel) before it is reported: RabbitMQ nacks what it could not take, which is often
    passing (a quorum queue electing a new leader) rather than final (a full queue).
    """

    def __init__(self, nack_retries: int = 0) -> None:
        self._pending: OrderedDict[int, Outgoing] = OrderedDict()  # ascending tags
        self.nack_retries = nack_retries
        self.retries: list[Outgoing] = []  # nacked, to be sent again, oldest first
        self.failures: deque[MessagingError] = deque()  # each reported once, oldest first
        self.confirmed = 0
        self.returned = 0
        self.nacked = 0

    def __len__(self) -> int:
        """Messages not settled yet: awaiting their confirm, or nacked and to be sent again."""
        return len(self._pending) + len(self.retries)

    def sent(self, tag: int, message: Outgoing) -> None:
        message.tag = tag
        self._pending[tag] = message

    def take_unconfirmed(self) -> list[Outgoing]:
        """Forget every pending message (the channel died) and hand them back, oldest first,
        with the nacked ones to be sent again."""
        messages = sorted([*self.retries, *self._pending.values()], key=lambda message: message.tag)
        self._pending.clear()
        self.retries.clear()
        return messages

    def on_confirm(self, tag: int, multiple: bool, acked: bool) -> int:
        """Settle ``tag`` (and every lower one with ``multiple``); how many were settled."""
        settled: list[Outgoing] = []
        if multiple:
            while self._pending and next(iter(self._pending)) <= tag:
                settled.append(self._pending.popitem(last=False)[1])
        elif tag in self._pending:
            settled.append(self._pending.pop(tag))
        for message in settled:
            if not acked and message.nacks < self.nack_retries:
                message.nacks += 1
                message.returned = None  # a return before a nack is moot: sent again
                self.retries.append(message)
            elif not acked:
                self.nacked += 1
                self.failures.append(
                    PublishNacked(
                        message.routing_key,
                        exchange=message.exchange,
                        message_id=message.properties.message_id,
                    )
                )
            elif message.returned is not None:
                self.returned += 1
                self.failures.append(message.unroutable(message.returned))
            else:
                self.confirmed += 1
        return len(settled)

    def on_return(self, exchange: str, routing_key: str, body: bytes, reason: str) -> None:
        """Mark the message a basic.return names; its ack follows and reports it."""
        # A return carries no delivery tag, but it precedes the confirm of its message and
        # returns come in publishing order: the oldest unreturned match is the one.
        for message in self._pending.values():
            if (
                message.returned is None
                and message.routing_key == routing_key
                and message.exchange == exchange
                and message.body == body
            ):
                message.returned = reason
                return
        logger.warning("basic.return for an unknown message to %r on %r", routing_key, exchange)

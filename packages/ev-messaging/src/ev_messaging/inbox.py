"""The deliveries of one consuming channel, and how they are settled.

The channel is in transaction mode: a batch's invalid messages are published to the invalid queue
and the batch is acknowledged in one ``tx.commit``. A consumer that dies before the commit leaves
nothing moved and nothing acknowledged; after it, both. So a crash never leaves a message moved
aside and still queued, and redelivery never moves it aside twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ev_messaging.delivery import Delivery, Rejection, invalid_properties
from ev_messaging.errors import TopologyError
from ev_messaging.topology import INVALID_QUEUE, TopologySettings, declare_topology

logger = logging.getLogger(__name__)


class Inbox:
    """Deliveries received on one channel and not yet settled.

    Delivery tags mean something only on their own channel: each connection gets a new inbox,
    and the old one is dropped with its channel, so a tag of a dead channel is never acknowledged.
    """

    def __init__(
        self,
        connection: BlockingConnection,
        channel: BlockingChannel,
        topology: TopologySettings,
        *,
        max_error_length: int,
        on_delivery: Callable[[], None],
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.deliveries: list[Delivery] = []
        self._topology = topology
        self._max_error_length = max_error_length
        self._on_delivery = on_delivery
        self._returned: list[tuple[Any, bytes]] = []  # (properties, body) the broker returned
        channel.tx_select()
        channel.add_on_return_callback(self._on_return)

    def on_message(self, _channel: Any, method: Any, properties: Any, body: bytes) -> None:
        """pika's ``on_message_callback``."""
        self.deliveries.append(Delivery.from_pika(method, properties, body))
        self._on_delivery()

    def take(self, count: int) -> list[Delivery]:
        """The oldest ``count`` deliveries, removed from the inbox."""
        batch = self.deliveries[:count]
        del self.deliveries[:count]
        return batch

    def settle(self, batch: Sequence[Delivery], rejections: Sequence[Rejection]) -> None:
        """Move ``rejections`` to the invalid queue and acknowledge ``batch``, atomically.

        ``batch`` must be the oldest unsettled deliveries, in order: one multiple-ack covers it.
        """
        for rejection in rejections:
            properties = invalid_properties(rejection, self._max_error_length)
            self.channel.basic_publish(
                "", INVALID_QUEUE, rejection.delivery.body, properties, mandatory=True
            )
        self.channel.basic_ack(delivery_tag=batch[-1].delivery_tag, multiple=len(batch) > 1)
        self.channel.tx_commit()
        if rejections:
            self._check_returns()

    def requeue(self, delivery: Delivery) -> None:
        """Give one delivery back; the queue counts it towards its delivery limit."""
        self.channel.basic_nack(delivery_tag=delivery.delivery_tag, multiple=False, requeue=True)
        self.channel.tx_commit()

    def _on_return(self, _channel: Any, _method: Any, properties: Any, body: bytes) -> None:
        self._returned.append((properties, body))

    def _check_returns(self) -> None:
        """Move again what the broker could not route: the invalid queue was deleted by hand.

        (The acknowledgement is committed by then; the returned copy is all there is.)
        """
        self.connection.process_data_events(time_limit=0)  # a basic.return precedes commit-ok
        for _attempt in range(2):
            if not self._returned:
                return
            returned, self._returned = self._returned, []
            logger.warning("%s is missing; declaring the topology again", INVALID_QUEUE)
            declare_topology(self.channel, self._topology)
            for properties, body in returned:
                self.channel.basic_publish("", INVALID_QUEUE, body, properties, mandatory=True)
            self.channel.tx_commit()
            self.connection.process_data_events(time_limit=0)
        for _properties, body in self._returned:
            logger.error("lost a message that %s refused: %.200r", INVALID_QUEUE, body)
        raise TopologyError(f"{INVALID_QUEUE} refuses messages")

"""One AMQP connection with a confirm-mode channel, on a private I/O loop the caller drives.

pika's BlockingConnection waits for each publisher confirm in turn. To keep many confirms in
flight, the publisher uses pika's asynchronous SelectConnection and drives its I/O loop from the
calling thread (as BlockingConnection itself does internally): no background thread, no locking
inside pika. Callbacks only record what happened; the owner reads the state after each ``pump``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import IOLoop

from ev_messaging.connect import connect_first
from ev_messaging.errors import BrokerUnavailable, MessagingError, from_pika
from ev_messaging.settings import AmqpSettings
from ev_messaging.topology import TopologySettings, declare_topology

logger = logging.getLogger(__name__)

#: on_confirm(delivery_tag, multiple, acked)
ConfirmCallback = Callable[[int, bool, bool], None]
#: on_return(exchange, routing_key, body, reason)
ReturnCallback = Callable[[str, str, bytes, str], None]


def _noop() -> None:
    pass


class Link:
    """A connection and its confirm-mode publishing channel; ``lost`` says why it is unusable."""

    def __init__(
        self,
        params: pika.connection.Parameters,
        on_confirm: ConfirmCallback,
        on_return: ReturnCallback,
    ) -> None:
        self.params = params
        self.lost: BaseException | None = None
        self.next_tag = 0  # delivery tags of the channel start at 1
        self.known_exchanges: set[str] = {""}
        self._on_confirm = on_confirm
        self._on_return = on_return
        self._open = False
        self._closed = False  # the connection, not only the channel
        self._released = False  # the I/O loop
        self._channel: Any = None
        self._select_ok = False
        self._ioloop = IOLoop()
        self._ioloop.activate_poller()
        self._connection = pika.SelectConnection(
            params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_lost,
            on_close_callback=self._on_connection_lost,
            custom_ioloop=self._ioloop,
        )

    @property
    def usable(self) -> bool:
        return self.lost is None and self._select_ok

    def open(self, deadline: float) -> None:
        """Wait until the channel is in confirm mode; raise the translated error otherwise."""
        self.wait(lambda: self._open, deadline)
        self._channel = self._open_channel(deadline)
        self._channel.add_on_close_callback(self._on_channel_closed)
        self._channel.add_on_return_callback(self._on_basic_return)
        self._channel.confirm_delivery(self._on_ack_nack, callback=self._on_select_ok)
        self.wait(lambda: self._select_ok, deadline)

    def pump(self, timeout: float) -> None:
        """Do pending I/O and run callbacks, waiting at most ``timeout`` seconds for some."""
        self._coalesce_output()
        timer = self._ioloop.call_later(max(timeout, 0.0), _noop)
        try:
            self._ioloop.poll()
            self._ioloop.process_timeouts()
        finally:
            self._ioloop.remove_timeout(timer)

    def _coalesce_output(self) -> None:
        """Join the frames waiting to be written into one buffer.

        pika's transport sends each buffered frame with its own ``send`` (a message is three
        frames), which cost the publisher more than everything else it does; one joined buffer
        goes out in one. This reaches into pika's transport: when a pika release changes it,
        the frames simply go out one by one again (the test of this method says so).
        """
        buffers = getattr(getattr(self._connection, "_transport", None), "_tx_buffers", None)
        if isinstance(buffers, deque) and len(buffers) > 1:
            joined = b"".join(buffers)
            buffers.clear()
            buffers.append(joined)

    def wait(self, ready: Callable[[], bool], deadline: float) -> None:
        """Pump until ``ready()``; raise if the link is lost or the deadline passes first."""
        while not ready():
            if self.lost is not None:
                raise from_pika(self.lost) from self.lost
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise BrokerUnavailable(f"no answer from {self.params.host}:{self.params.port}")
            self.pump(remaining)

    def publish(self, exchange: str, routing_key: str, body: bytes, properties: Any) -> int:
        """Send one mandatory message; its delivery tag. Raises pika errors on a dead channel."""
        self._channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
        self.next_tag += 1
        return self.next_tag

    def exchange_exists(self, name: str, deadline: float) -> bool:
        """Whether ``name`` exists, asked on a side channel (a failed passive declare closes the
        channel it runs on, which must not be the one with messages in flight)."""
        if name in self.known_exchanges:
            return True
        outcome: list[BaseException | None] = []
        side = self._open_channel(deadline)
        side.add_on_close_callback(lambda _ch, reason: outcome.append(reason))
        side.exchange_declare(name, passive=True, callback=lambda _frame: outcome.append(None))
        self.wait(lambda: bool(outcome), deadline)
        if outcome[0] is None:
            side.close()
            self.known_exchanges.add(name)
            return True
        reason = outcome[0]
        if isinstance(reason, pika.exceptions.ChannelClosed) and reason.reply_code == 404:
            return False
        raise from_pika(reason) from reason

    def _open_channel(self, deadline: float) -> Any:
        opened: list[Any] = []
        self._connection.channel(on_open_callback=opened.append)
        self.wait(lambda: bool(opened), deadline)
        return opened[0]

    def close(self) -> None:
        """Close the connection (briefly waiting for the broker's answer) and release the loop."""
        if self._released:
            return
        connection = self._connection
        try:
            if not (self._closed or connection.is_closing or connection.is_closed):
                connection.close()
            # pika closes the socket once the broker answered (or the stream dropped).
            deadline = time.monotonic() + 2.0
            while not self._closed and time.monotonic() < deadline:
                self.pump(deadline - time.monotonic())
        except (pika.exceptions.AMQPError, MessagingError) as exc:  # already going away
            logger.debug("closing %s: %r", self.params.host, exc)
        finally:
            self.lost = self.lost or pika.exceptions.ConnectionClosedByClient(200, "closed")
            self._released = True
            self._ioloop.close()

    # pika callbacks: record, never raise

    def _on_connection_open(self, _connection: Any) -> None:
        self._open = True

    def _on_connection_lost(self, _connection: Any, reason: BaseException) -> None:
        self._closed = True
        self.lost = self.lost or reason

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        self.lost = self.lost or reason

    def _on_select_ok(self, _frame: Any) -> None:
        self._select_ok = True

    def _on_ack_nack(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        self._on_confirm(method.delivery_tag, method.multiple, acked)

    def _on_basic_return(self, _channel: Any, method: Any, _props: Any, body: bytes) -> None:
        reason = f"{method.reply_code} {method.reply_text}"
        self._on_return(method.exchange, method.routing_key, body, reason)


def connect(
    settings: AmqpSettings,
    topology: TopologySettings | None,
    on_confirm: ConfirmCallback,
    on_return: ReturnCallback,
    deadline: float,
) -> Link:
    """An open link to the first URL of ``settings`` that answers, with ``topology`` declared.

    Raises :class:`BrokerUnavailable` when none answers; other errors (refused credentials,
    a certificate that does not verify, a conflicting topology) are raised at once, since the
    next URL would not fix them (see :func:`~ev_messaging.connect.connect_first`).
    """

    def open_link(params: pika.connection.Parameters) -> Link:
        if topology is not None:
            with pika.BlockingConnection(params) as connection:
                declare_topology(connection.channel(), topology)
        link = Link(params, on_confirm, on_return)
        try:
            link.open(deadline)
        except BaseException:
            link.close()
            raise
        return link

    link, _index = connect_first(settings, open_link, client_name="publisher", log=logger)
    return link

"""A broker link gone silent: given up within two heartbeats, also inside a blocking call.

The consumer reaches the broker through a loopback proxy that can stop moving bytes both ways
while keeping every socket open (a half-open link). pika alone notices after heartbeat + 5 to
twice that (6-12 s for the 1 s heartbeat here); the consumer must fail over to its second URL
well within 2 heartbeats plus slack, and handle what it held again there.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence

import pika
import pytest

from ev_messaging import (
    INVALID_QUEUE,
    AmqpSettings,
    BatchConsumer,
    Delivery,
    Rejection,
    routing_key,
)
from ev_messaging.silence import SilenceWatch

pytestmark = pytest.mark.integration

HEARTBEAT_S = 1
#: Two heartbeats, plus room for a loaded machine; pika alone needs 6 s at least.
BOUND_S = 2 * HEARTBEAT_S + 2.0


class SilentProxy:
    """Forwards a loopback port to the broker until ``silence()``; then holds every byte."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.silent = threading.Event()
        self.closed = threading.Event()
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        self.silent.set()

    def close(self) -> None:
        self.closed.set()
        for sock in [self.listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while not self.closed.is_set():
                readable, _, _ = select.select([self.listener], [], [], 0.05)
                if not readable:
                    continue
                client, _ = self.listener.accept()
                self.accepted += 1
                self._sockets.append(client)
                if self.silent.is_set():
                    continue  # held: nothing behind it
                upstream = socket.create_connection(self.target, timeout=5)
                self._sockets.append(upstream)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            while not self.closed.is_set():
                if self.silent.is_set():
                    self.closed.wait(0.05)
                    continue
                readable, _, _ = select.select([source], [], [], 0.05)
                if readable and not self.silent.is_set():
                    data = source.recv(65536)
                    if not data:
                        return
                    sink.sendall(data)


@pytest.fixture
def proxy(amqp_url: str) -> Iterator[SilentProxy]:
    parts = urllib.parse.urlsplit(amqp_url)
    server = SilentProxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    yield server
    server.close()


def _via(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(
        parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}")
    )


def test_a_silent_link_is_given_up_within_two_heartbeats_even_inside_a_commit(
    amqp_url: str, settings: AmqpSettings, topology, broker, proxy: SilentProxy
) -> None:
    """The link goes silent while the handler runs; the batch's commit then waits on it."""
    urls = (_via(amqp_url, proxy.port), amqp_url)
    amqp = AmqpSettings(
        urls=urls, heartbeat=HEARTBEAT_S, client_name=settings.client_name, retry_delay=0.05
    )
    release = threading.Event()
    handled: list[tuple[bytes, bool]] = []

    def handler(deliveries: Sequence[Delivery]) -> Sequence[Rejection]:
        handled.extend((d.body, d.redelivered) for d in deliveries)
        release.wait(30)  # the first batch is held until the link is silent
        return [Rejection(d, "moved aside") for d in deliveries]

    consumer = BatchConsumer(amqp, topology, handler, batch_size=10, batch_max_wait=0.05)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        broker.publish(routing_key("battery"), b"held")
        broker.wait_for(lambda: handled, what="the batch in the handler")
        proxy.silence()
        silent_at = time.monotonic()
        release.set()  # settle: publish to the invalid queue, ack, tx.commit on the silent link
        broker.wait_for(lambda: consumer.stats.reconnects == 1, 30, "a reconnection")
        took = time.monotonic() - silent_at
        broker.wait_for(lambda: consumer.stats.acked == 1, 10, "the batch acked at last")
    finally:
        consumer.stop()
        thread.join(timeout=15)
    assert not errors, errors
    assert took <= BOUND_S, took
    # Handled again after the failover, acknowledged and moved aside once.
    assert handled == [(b"held", False), (b"held", True)]
    assert [m.body for m in broker.drain(INVALID_QUEUE, 1)] == [b"held"]


def test_the_watch_is_armed_on_a_connection_with_heartbeats(amqp_url: str) -> None:
    """It reaches into pika: a release that changes what it uses must make this fail."""
    params = pika.URLParameters(amqp_url)
    params.heartbeat = 5
    connection = pika.BlockingConnection(params)
    try:
        watch = SilenceWatch(connection)
        assert watch.armed
        assert watch.limit == 10
        watch.stop()
        assert not watch.armed
        connection.process_data_events(time_limit=0.1)
    finally:
        connection.close()
    params.heartbeat = 0
    connection = pika.BlockingConnection(params)
    try:
        assert not SilenceWatch(connection).armed
    finally:
        connection.close()

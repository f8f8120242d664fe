"""Queue depths on the real broker: counts, a queue that is missing, and every failure raised as
ev-messaging's errors, never pika's."""

from __future__ import annotations

import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pika
import pytest

from ev_messaging import (
    AmqpSettings,
    AuthenticationFailed,
    MessagingError,
    NoBrokerAnswered,
    QueueDepth,
    QueueDepths,
    QueueUnavailable,
)

if TYPE_CHECKING:
    from conftest import Broker

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(broker: Broker) -> Iterator[str]:
    """A classic queue of the test's own (unique name, deleted after) holding three messages."""
    name = f"evtest-depth-{uuid.uuid4().hex[:8]}"
    broker.channel.queue_declare(name, durable=True)
    for _ in range(3):
        broker.channel.basic_publish("", name, b"x")
    broker.wait_for(lambda: broker.depth(name) == 3, what="three messages")
    yield name
    broker.channel.queue_delete(name)


def test_reads_messages_and_consumers(settings: AmqpSettings, broker: Broker, queue: str) -> None:
    consuming = broker.channel.connection.channel()
    consuming.basic_qos(prefetch_count=1)
    consuming.basic_consume(queue, lambda *_: None)  # holds one message, unacked
    try:
        broker.wait_for(lambda: broker.depth(queue) == 2, what="one message delivered")
        with QueueDepths(settings) as depths:
            assert depths.read(queue) == QueueDepth(queue, messages=2, consumers=1)
    finally:
        consuming.close()


def test_a_missing_queue_is_that_queue_only(
    settings: AmqpSettings, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    missing = f"evtest-missing-{uuid.uuid4().hex[:8]}"
    with QueueDepths(settings) as depths:
        with pytest.raises(QueueUnavailable) as caught:
            depths.read(missing)
        assert depths.connected  # the channel closed, not the connection
        assert depths.read(queue).messages == 3
    error = caught.value
    assert (error.queue, error.reply_code, error.not_found) == (missing, 404, True)
    assert error.reply_text.startswith("NOT_FOUND")
    assert str(error).startswith(f"queue {missing} unavailable: 404 NOT_FOUND")
    assert isinstance(error.__cause__, pika.exceptions.ChannelClosedByBroker)
    # pika's "Received remote Channel.Close (404)" WARNING is moved to DEBUG (pika_logs).
    assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []


def test_refused_credentials_are_authentication_failed(amqp_url: str) -> None:
    url = urllib.parse.urlsplit(amqp_url)
    wrong = url._replace(netloc=f"guest:s3cret@{url.hostname}:{url.port}")
    with (
        QueueDepths(AmqpSettings(urls=(urllib.parse.urlunsplit(wrong),))) as depths,
        pytest.raises(AuthenticationFailed),
    ):
        depths.read("anything")
    assert not depths.connected


def test_no_broker_is_no_broker_answered_with_the_reason() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = AmqpSettings(urls=(f"amqp://guest:guest@127.0.0.1:{port}/%2F",))
    with QueueDepths(settings) as depths:
        with pytest.raises(NoBrokerAnswered) as caught:
            depths.read("anything")
        assert depths.serve(0.01) is False  # nothing to serve, nothing waited
    [(_, reason)] = caught.value.attempts
    assert "ConnectionRefusedError" in str(reason)


def test_a_lost_connection_is_raised_by_serve_and_restored_by_read(
    settings: AmqpSettings, broker: Broker, queue: str, client_name: str
) -> None:
    with QueueDepths(settings, client_name="depth test") as depths:
        depths.read(queue)
        assert broker.kill_connections(client_name) == 1
        lost = _serve_until_it_fails(depths)
        assert "320" in str(lost)  # CONNECTION_FORCED
        assert not depths.connected
        assert depths.read(queue).messages == 3
        assert depths.connected


def _serve_until_it_fails(depths: QueueDepths, timeout: float = 10.0) -> MessagingError:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            depths.serve(0.05)
        except MessagingError as exc:
            return exc
    pytest.fail("serve() did not notice the lost connection")

from __future__ import annotations

import threading
import time

import pika
import pytest

from ev_messaging import (
    INVALID_QUEUE,
    UNROUTED_QUEUE,
    AmqpSettings,
    AuthenticationFailed,
    BrokerUnavailable,
    ConfirmTimeout,
    MessagingError,
    Publisher,
    PublishNacked,
    TopologySettings,
    Unroutable,
    routing_key,
)

pytestmark = pytest.mark.integration

BODY = b'{"sensor_id": "ev_001", "sensor_type": "battery", "timestamp": "2024-02-01T12:00:00Z"}'


def test_messages_land_in_their_type_queue_as_published(settings, topology, broker) -> None:
    with Publisher(settings, topology=topology) as publisher:
        publisher.publish(routing_key("battery"), BODY, message_id="m-1", headers={"k": "v"})
    [message] = broker.drain(routing_key("battery"), 1)
    assert message.body == BODY
    props = message.properties
    assert (props.delivery_mode, props.content_type, props.message_id) == (
        2,
        "application/json",
        "m-1",
    )
    assert props.headers["k"] == "v"
    stats = publisher.stats
    assert (stats.published, stats.confirmed, stats.in_flight) == (1, 1, 0)


def test_unknown_types_go_to_the_unrouted_queue(settings, topology, broker) -> None:
    with Publisher(settings, topology=topology) as publisher:
        publisher.publish(routing_key("tyre_tread"), BODY)
    [message] = broker.drain(UNROUTED_QUEUE, 1)
    assert message.routing_key == "ev.sensor.tyre_tread"
    assert (publisher.stats.confirmed, publisher.stats.returned) == (1, 0)


def test_many_messages_are_pipelined_and_all_confirmed(settings, topology, broker) -> None:
    count = 3000
    with Publisher(settings, topology=topology, max_in_flight=50) as publisher:
        for i in range(count):
            publisher.publish(routing_key("battery"), str(i).encode())
            assert publisher.stats.in_flight <= 50
        publisher.flush(timeout=30)
        assert publisher.stats.confirmed == count
    broker.wait_for(lambda: broker.depth(routing_key("battery")) == count, what="all messages")


def test_a_returned_message_raises_unroutable_once(settings, topology, broker) -> None:
    # The default exchange has no alternate exchange: a key naming no queue is returned.
    with Publisher(settings, topology=topology) as publisher:
        publisher.publish("no-such-queue", BODY, exchange="", message_id="lost-1")
        with pytest.raises(Unroutable) as caught:
            publisher.flush(timeout=10)
        publisher.flush(timeout=10)  # reported once only
        publisher.publish(INVALID_QUEUE, BODY, exchange="")  # still usable afterwards
    error = caught.value
    assert (error.routing_key, error.exchange, error.message_id) == ("no-such-queue", "", "lost-1")
    assert "NO_ROUTE" in str(error)
    assert (publisher.stats.returned, publisher.stats.confirmed) == (1, 1)
    assert broker.depth(INVALID_QUEUE) == 1


def test_a_missing_exchange_is_unroutable_without_breaking_the_channel(settings, topology) -> None:
    with Publisher(settings, topology=topology) as publisher:
        publisher.publish(routing_key("battery"), BODY)
        with pytest.raises(Unroutable, match="exchange not found"):
            publisher.publish("key", BODY, exchange="no.such.exchange")
        publisher.publish(routing_key("battery"), BODY)
    assert (publisher.stats.confirmed, publisher.stats.reconnects) == (2, 0)


def test_a_nacked_message_raises_publish_nacked(settings, topology, broker) -> None:
    # A full queue with reject-publish overflow makes the broker nack.
    broker.channel.queue_declare(
        "tiny", arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    with Publisher(settings, topology=topology, nack_retries=2) as publisher:
        publisher.publish("tiny", b"1", exchange="")
        publisher.flush(timeout=10)
        publisher.publish("tiny", b"2", exchange="", message_id="second")
        with pytest.raises(PublishNacked) as caught:
            publisher.flush(timeout=10)
    assert caught.value.message_id == "second"
    stats = publisher.stats
    assert (stats.confirmed, stats.nacked, stats.republished) == (1, 1, 2)
    assert stats.reconnects == 2, "each retry on a new channel"


def test_a_nacked_message_is_sent_again_until_the_broker_takes_it(
    settings, topology, broker, amqp_url
) -> None:
    """A nack is often passing (a quorum queue between two leaders): the message is sent again,
    on a new channel after a backoff delay, rather than reported at once."""
    broker.channel.queue_declare(
        "tiny", arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    broker.channel.basic_publish("", "tiny", b"1")  # the queue is full

    def make_room() -> None:  # within the retries' backoff (from 0.05 s, doubling: 0.8 s or more)
        time.sleep(0.3)
        with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
            channel = connection.channel()
            method, _props, _body = channel.basic_get("tiny", auto_ack=True)
            assert method is not None

    helper = threading.Thread(target=make_room)
    with Publisher(settings, topology=topology, nack_retries=5) as publisher:
        helper.start()
        publisher.publish("tiny", b"2", exchange="", message_id="second")
        publisher.flush(timeout=15)
    helper.join(timeout=10)
    stats = publisher.stats
    assert (stats.confirmed, stats.nacked) == (1, 0)
    assert stats.republished >= 1
    [message] = broker.drain("tiny", 1)
    assert message.body == b"2"


def test_connection_loss_resends_unconfirmed_messages(
    settings, topology, broker, client_name
) -> None:
    killed = threading.Event()

    def kill() -> None:  # rabbitmqctl only: the probe's channel stays in the test's thread
        if broker.kill_connections(client_name):
            killed.set()

    killer = threading.Thread(target=kill)
    sent = 0
    with Publisher(settings, topology=topology) as publisher:
        killer.start()
        # Publish flat out until well after the kill, so confirms are in flight when it hits.
        after_kill = 0
        while after_kill < 2000:
            publisher.publish(routing_key("battery"), str(sent).encode())
            sent += 1
            after_kill += killed.is_set()
            assert sent < 500_000, "the connection was never killed"
        publisher.flush(timeout=30)
        killer.join()
    stats = publisher.stats
    assert stats.reconnects == 1
    assert stats.confirmed == sent
    queue = routing_key("battery")
    broker.wait_for(lambda: broker.depth(queue) >= sent, what="every message in the queue")
    # Nothing lost; a message resent after the loss may be there twice (at-least-once).
    bodies = {int(m.body) for m in broker.drain(queue, broker.depth(queue), timeout=30)}
    assert bodies == set(range(sent))


def test_sleep_keeps_confirms_flowing(settings, topology) -> None:
    with Publisher(settings, topology=topology) as publisher:
        publisher.publish(routing_key("battery"), BODY)
        publisher.sleep(0.05)
        while publisher.stats.in_flight:
            publisher.sleep(0.05)
        assert publisher.stats.confirmed == 1


def test_flush_timeout_reports_what_is_left(settings, topology) -> None:
    with Publisher(settings, topology=topology) as publisher:
        for i in range(100):
            publisher.publish(routing_key("battery"), str(i).encode())
        with pytest.raises(ConfirmTimeout) as caught:
            publisher.flush(timeout=0)
        assert 0 < caught.value.unconfirmed <= 100
        publisher.flush(timeout=10)
    assert publisher.stats.confirmed == 100


def test_wrong_password_fails_fast(pytestconfig: pytest.Config) -> None:
    # The shared vhost is fine here: the broker refuses the login before anything happens.
    bad = str(pytestconfig.getoption("--amqp-url")).replace(":guest@", ":wrong@")
    with pytest.raises(AuthenticationFailed), Publisher(AmqpSettings(urls=(bad,))):
        pass


def test_no_broker_raises_broker_unavailable_after_the_timeout() -> None:
    settings = AmqpSettings(urls=("amqp://guest:guest@127.0.0.1:1/%2F",), retry_delay=0.05)
    with pytest.raises(BrokerUnavailable, match=r"127\.0\.0\.1:1/"):
        Publisher(settings, connect_timeout=0.3).connect()


def test_urls_fail_over_in_order(amqp_url: str, topology: TopologySettings, broker) -> None:
    settings = AmqpSettings(urls=("amqp://guest:guest@127.0.0.1:1/%2F", amqp_url))
    with Publisher(settings, topology=topology) as publisher:
        publisher.publish(routing_key("speed"), BODY)
    assert broker.depth(routing_key("speed")) == 1


def test_a_closed_publisher_refuses_to_publish() -> None:
    publisher = Publisher(AmqpSettings(urls=("amqp://guest:guest@127.0.0.1:1/%2F",)))
    publisher.close()
    with pytest.raises(MessagingError, match="closed"):
        publisher.publish(routing_key("speed"), BODY)

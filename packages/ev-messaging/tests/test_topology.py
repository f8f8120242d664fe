from __future__ import annotations

import pika
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ev_messaging import (
    EXCHANGE,
    INVALID_QUEUE,
    UNROUTED_QUEUE,
    MessagingError,
    TopologyError,
    TopologySettings,
    declare_topology,
    queue_arguments,
    routing_key,
    sensor_type_from_routing_key,
)
from ev_schemas import default_catalogue

type_names = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)


def test_routing_key_names_the_type() -> None:
    assert routing_key("battery") == "ev.sensor.battery"


@given(type_names)
def test_sensor_type_round_trips_through_the_routing_key(name: str) -> None:
    assert sensor_type_from_routing_key(routing_key(name)) == name


@pytest.mark.parametrize(
    "key", ["", "ev.sensor.", "ev.sensors", "ev.sensor.Battery", "ev.sensor.a.b", "x.battery"]
)
def test_foreign_routing_keys_name_no_type(key: str) -> None:
    assert sensor_type_from_routing_key(key) is None


def test_plain_queues_are_quorum_queues() -> None:
    assert queue_arguments() == {"x-queue-type": "quorum"}


def test_type_queues_dead_letter_to_the_invalid_queue_after_the_limit() -> None:
    assert queue_arguments(7) == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": INVALID_QUEUE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def test_settings_from_a_catalogue_keep_its_order() -> None:
    catalogue = default_catalogue()
    settings = TopologySettings.from_types(catalogue)
    assert settings.sensor_types == tuple(catalogue)
    assert settings.queues[0] == routing_key(next(iter(catalogue)))
    assert settings.delivery_limit == 10


@pytest.mark.parametrize(
    ("types", "limit"),
    [((), 10), ("battery", 10), (("Battery",), 10), (("a", "a"), 10), (("a",), 0)],
)
def test_bad_topology_settings_are_refused(types: tuple[str, ...], limit: int) -> None:
    with pytest.raises(MessagingError):
        TopologySettings(types, delivery_limit=limit)


@pytest.mark.integration
def test_declaring_twice_is_harmless_but_changed_arguments_are_reported(
    amqp_url: str, topology: TopologySettings
) -> None:
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        declare_topology(channel, topology)
        declare_topology(channel, topology)
        for queue in (*topology.queues, UNROUTED_QUEUE, INVALID_QUEUE):
            assert channel.queue_declare(queue, passive=True).method.message_count == 0
        channel.exchange_declare(EXCHANGE, passive=True)

        changed = TopologySettings(topology.sensor_types, delivery_limit=3)
        with pytest.raises(TopologyError, match="x-delivery-limit"):
            declare_topology(connection.channel(), changed)


@pytest.mark.integration
def test_routing_known_unknown_and_poison_messages(broker) -> None:
    broker.publish(routing_key("battery"), b"known")
    broker.publish(routing_key("tyre_tread"), b"unknown")
    assert [m.body for m in broker.drain(routing_key("battery"), 1)] == [b"known"]
    [unrouted] = broker.drain(UNROUTED_QUEUE, 1)
    assert (unrouted.body, unrouted.routing_key) == (b"unknown", "ev.sensor.tyre_tread")

    # Requeued past the delivery limit (2), a message is dead-lettered to the invalid queue.
    broker.publish(routing_key("speed"), b"poison", headers={"a": 1})
    channel = broker.channel
    deliveries = 0
    while deliveries <= 2:
        method, _props, body = channel.basic_get(routing_key("speed"))
        if method is None:
            continue
        assert body == b"poison"
        deliveries += 1
        channel.basic_nack(method.delivery_tag, requeue=True)
    [poison] = broker.drain(INVALID_QUEUE, 1)
    assert poison.body == b"poison"
    assert poison.properties.headers["a"] == 1
    assert poison.properties.headers["x-first-death-reason"] == "delivery_limit"
    assert broker.depth(routing_key("speed")) == 0

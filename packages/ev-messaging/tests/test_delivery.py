from __future__ import annotations

import pika

from ev_messaging import HEADER_ERROR, HEADER_ROUTING_KEY, Delivery, Rejection
from ev_messaging.delivery import invalid_properties, truncate


class _Method:
    delivery_tag = 7
    routing_key = "ev.sensor.speed"
    redelivered = True


def test_a_delivery_carries_what_the_broker_sent() -> None:
    props = pika.BasicProperties(message_id="m", headers={"a": 1}, content_type="application/json")
    delivery = Delivery.from_pika(_Method(), props, b"{}")
    assert (delivery.delivery_tag, delivery.routing_key, delivery.body) == (
        7,
        _Method.routing_key,
        b"{}",
    )
    assert (delivery.message_id, dict(delivery.headers), delivery.redelivered) == (
        "m",
        {"a": 1},
        True,
    )
    assert delivery.content_type == "application/json"


def test_invalid_properties_keep_the_original_and_add_the_why() -> None:
    props = pika.BasicProperties(
        message_id="m",
        content_type="application/json",
        headers={"a": 1},
        expiration="1000",
        user_id="someone",
        correlation_id="c",
        delivery_mode=1,
    )
    delivery = Delivery.from_pika(_Method(), props, b"{}")
    moved = invalid_properties(Rejection(delivery, "value out of range"))
    assert moved.headers == {
        "a": 1,
        HEADER_ROUTING_KEY: "ev.sensor.speed",
        HEADER_ERROR: "value out of range",
    }
    assert (moved.message_id, moved.content_type, moved.correlation_id) == (
        "m",
        "application/json",
        "c",
    )
    assert moved.delivery_mode == 2
    assert moved.expiration is None
    assert moved.user_id is None
    assert delivery.headers == {"a": 1}  # the delivery itself is untouched


def test_deliveries_can_be_hashed_despite_their_headers() -> None:
    props = pika.BasicProperties(headers={"a": 1})
    assert len({Delivery.from_pika(_Method(), props, b"{}")}) == 1


def test_long_reasons_are_truncated_visibly() -> None:
    assert truncate("short") == "short"
    cut = truncate("x" * 5000, 100)
    assert len(cut) == 100
    assert cut.endswith("…")

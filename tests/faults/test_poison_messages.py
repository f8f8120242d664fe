"""Poison messages: valid readings whose processing fails every time, for a reason that is not
a Redis outage, end in ev.sensors.invalid after a bounded number of deliveries.

The poison is natural: one sensor's history key holds a plain string (a damaged key, as a bad
manual fix or a foreign writer could leave), so every write of that sensor's battery readings
fails with WRONGTYPE. The consumer hands the failing batch again one message at a time, requeues
only the poison, and the quorum queue's delivery limit dead-letters it (x-death, reason
``delivery_limit``); the readings that shared its batches are stored once, none moved aside.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis

from ev_messaging import INVALID_QUEUE, routing_key
from ev_storage import KeyLayout
from tests.faults.accounting import Expectation
from tests.faults.malformed import Fuzzed, Generator, encode
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, publish, take_all

POISON_SENSOR = "ev_poison"
POISONS = 3
GOOD = 2_000
DELIVERY_LIMIT = 10  # the consumer's default, and the publisher's (topology must agree)

pytestmark = pytest.mark.integration


def test_poison_is_dead_lettered_after_the_delivery_limit_and_nothing_else_is(
    amqp_url: str,
    redis_url: str,
    key_prefix: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
) -> None:
    run = scenario(f"poison message (damaged Redis key) x{POISONS}", redis_url)
    client = redis.Redis.from_url(redis_url)
    client.set(KeyLayout(key_prefix).history(POISON_SENSOR, "battery"), b"not a history")
    client.close()

    generator = Generator(seed=13, now=datetime.now(UTC))
    good = [generator.reading() for _ in range(GOOD)]
    poisons = [
        Fuzzed(
            routing_key("battery"),
            encode(
                {
                    "sensor_id": POISON_SENSOR,
                    "sensor_type": "battery",
                    "timestamp": f"{(generator.base + timedelta(seconds=n)):%Y-%m-%dT%H:%M:%SZ}",
                    "value": 50.0 + n,
                    "unit": "percentage",
                }
            ),
            "poison",
        )
        for n in range(POISONS)
    ]
    messages = [Fuzzed(routing_key(f["sensor_type"]), encode(f), "valid") for f in good]
    for index, poison in enumerate(poisons):  # spread through the stream
        messages.insert((index + 1) * len(messages) // (POISONS + 1), poison)
    stored: dict[tuple[str, str], int] = {}
    for fields in good:
        pair = (fields["sensor_id"], fields["sensor_type"])
        stored[pair] = stored.get(pair, 0) + 1

    consumer = consumers.start(DELIVERY_LIMIT=str(DELIVERY_LIMIT))
    publish(amqp_url, messages)
    run.fault_messages = POISONS
    run.finish(
        Expectation(published=len(messages), stored=stored, invalid=POISONS, unrouted=0),
        drain_timeout=90,
    )

    dead = take_all(amqp_url, INVALID_QUEUE)
    assert sorted(body for body, _ in dead) == sorted(p.body for p in poisons)
    for _body, headers in dead:
        assert headers["x-first-death-reason"] == "delivery_limit"
        assert headers["x-first-death-queue"] == routing_key("battery")
    log = consumer.output()
    assert "handling its deliveries one by one" in log
    assert "WRONGTYPE" in log

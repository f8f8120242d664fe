"""Thousands of malformed messages interleaved with valid ones, published with plain pika.

Every bad one ends in ev.sensors.invalid, body byte for byte, with its routing key and a reason
(the consumer's own, never one the publisher forged); every good one is stored once; every
message to a key with no queue is kept in ev.sensors.unrouted. The consumer never stops.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ev_messaging import HEADER_ERROR, HEADER_ROUTING_KEY, INVALID_QUEUE, UNROUTED_QUEUE
from tests.faults.accounting import Expectation
from tests.faults.malformed import FORGED_ERROR, Generator
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, publish, take_all

SEED = 5
GOOD, BAD, UNROUTABLE = 3_000, 3_000, 100

pytestmark = pytest.mark.integration


def test_every_bad_message_moved_aside_as_it_came_every_good_one_stored(
    amqp_url: str,
    redis_url: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
) -> None:
    traffic = Generator(SEED, datetime.now(UTC)).traffic(GOOD, BAD, UNROUTABLE)
    assert not traffic.disagreements, "the validator accepted a surely invalid message"
    assert len(traffic.invalid) >= BAD * 0.95
    run = scenario("fuzzed malformed messages among valid ones", redis_url)
    consumer = consumers.start()
    publish(amqp_url, traffic.messages)
    assert consumer.alive, consumer.tail()
    expected = Expectation(
        published=len(traffic.messages),
        stored=dict(traffic.stored),
        invalid=len(traffic.invalid),
        unrouted=len(traffic.unrouted),
        duplicates=traffic.duplicates,
    )
    run.fault_messages = len(traffic.invalid)
    run.notes["kinds"] = dict(Counter(m.kind for m in traffic.invalid))
    run.notes["left_out_far_in_time"] = traffic.left_out
    run.finish(expected)

    moved = take_all(amqp_url, INVALID_QUEUE)
    assert Counter((h[HEADER_ROUTING_KEY], body) for body, h in moved) == Counter(
        (m.routing_key, m.body) for m in traffic.invalid
    )
    for _body, headers in moved:
        reason = headers[HEADER_ERROR]
        assert isinstance(reason, str)
        assert 0 < len(reason) <= 1000
        assert reason != FORGED_ERROR
    kept = take_all(amqp_url, UNROUTED_QUEUE)
    assert Counter(body for body, _ in kept) == Counter(m.body for m in traffic.unrouted)

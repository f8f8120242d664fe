"""Readings published again with the same identity (sensor, type, timestamp) but another value.

The first value stays; each conflicting copy is moved to ev.sensors.invalid byte for byte with
``x-ev-error: conflicts with stored value``, and each copy with the same canonical value (the same
body, the body written another way, or the value in another unit) is a plain duplicate. The copies
arrive while the consumer is killed twice, so some come again: a redelivered conflict is moved
aside once (its move and its ack commit together), a redelivered identical copy stays a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio

from ev_messaging import HEADER_ERROR, HEADER_ROUTING_KEY, INVALID_QUEUE, routing_key
from ev_schemas import ReadingValidator, default_catalogue, timestamp_ms
from ev_storage import ReadingReader, StorageSettings
from tests.faults.accounting import Expectation
from tests.faults.malformed import Fuzzed, Generator, encode
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, publish, publish_pipelined, take_all
from tests.support import queue_depth, wait_until

SEED = 99
ORIGINALS = 3_000
COPIES = 1_500
COPY_RATE = 400  # msg/s: the copies take about 4 s, so the kills land among them
KILLS = 2
CONFLICT_REASON = "conflicts with stored value"

pytestmark = pytest.mark.integration

Identity = tuple[str, str, int]


def _copy(rng: random.Random, fields: dict[str, Any]) -> tuple[str, bytes]:
    """A copy of a published reading: (how it was made, body)."""
    kind = rng.choice(("same body", "rewritten", "other unit", "other value", "other value"))
    if kind == "same body":
        return kind, encode(fields)
    if kind == "rewritten":  # other key order, spacing and number form: the same reading
        value = fields["value"]
        shown = int(value) if float(value).is_integer() else value
        return kind, json.dumps({**dict(reversed(fields.items())), "value": shown}).encode()
    if kind == "other unit" and fields["unit"] == "celsius":
        fahrenheit = {**fields, "value": fields["value"] * 9 / 5 + 32, "unit": "fahrenheit"}
        return kind, encode(fahrenheit)
    low, high = _range(fields["sensor_type"])
    value = fields["value"] + 1.5 if fields["value"] + 1.5 <= high else fields["value"] - 1.5
    assert low <= value <= high
    return "other value", encode({**fields, "value": value})


def _range(sensor_type: str) -> tuple[float, float]:
    found = default_catalogue().get(sensor_type)
    assert found is not None
    return found.minimum, found.maximum


def test_a_conflicting_copy_is_moved_aside_and_the_first_value_stays(
    amqp_url: str,
    redis_url: str,
    key_prefix: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
) -> None:
    rng = random.Random(SEED)
    generator = Generator(SEED, datetime.now(UTC))
    originals = [generator.reading() for _ in range(ORIGINALS)]
    # The oracle: the validator's canonical value decides duplicate or conflict.
    validator = ReadingValidator(catalogue=default_catalogue())
    first: dict[Identity, float] = {}
    stored: Counter[tuple[str, str]] = Counter()
    for fields in originals:
        reading = validator.parse(encode(fields), expected_type=fields["sensor_type"])
        first[(reading.sensor_id, reading.sensor_type, timestamp_ms(reading))] = reading.value
        stored[(reading.sensor_id, reading.sensor_type)] += 1
    assert len(first) == ORIGINALS, "the generator gives every reading an identity of its own"
    copies: list[Fuzzed] = []
    conflicts: list[Fuzzed] = []
    for fields in rng.choices(originals, k=COPIES):
        kind, body = _copy(rng, fields)
        reading = validator.parse(body, expected_type=fields["sensor_type"])
        identity = (reading.sensor_id, reading.sensor_type, timestamp_ms(reading))
        copy = Fuzzed(routing_key(fields["sensor_type"]), body, kind)
        copies.append(copy)
        if reading.value != first[identity]:
            conflicts.append(copy)
    kinds = Counter(copy.kind for copy in copies)
    assert kinds["other unit"] > 0
    assert 0 < len(conflicts) < COPIES

    run = scenario("republished with another value, consumer killed x2", redis_url)
    consumer = consumers.start()
    publish(
        amqp_url, [Fuzzed(routing_key(f["sensor_type"]), encode(f), "valid") for f in originals]
    )
    # Every original is stored before any copy goes out: which value is first is then known.
    wait_until(run.live.reached(ORIGINALS), 60, "the originals stored")

    publisher = threading.Thread(
        target=publish_pipelined, args=(amqp_url, copies, COPY_RATE), daemon=True
    )
    publisher.start()
    for share in range(1, KILLS + 1):
        threshold = share * len(conflicts) // (KILLS + 2)
        wait_until(lambda t=threshold: queue_depth(amqp_url, INVALID_QUEUE) >= t, 60, "moves")
        assert consumer.alive, consumer.tail()
        consumer.kill()
        consumer = consumers.start()
        run.fault_over()
    publisher.join(timeout=60)
    assert not publisher.is_alive(), "the copies were not all published"

    run.fault_messages = len(conflicts)
    run.notes["copies"] = dict(kinds)
    run.finish(
        Expectation(
            published=ORIGINALS + COPIES,
            stored=dict(stored),
            invalid=len(conflicts),
            unrouted=0,
            duplicates=COPIES - len(conflicts),
        )
    )

    moved = take_all(amqp_url, INVALID_QUEUE)
    assert Counter((h[HEADER_ROUTING_KEY], body) for body, h in moved) == Counter(
        (c.routing_key, c.body) for c in conflicts
    )
    assert {h[HEADER_ERROR] for _, h in moved} == {CONFLICT_REASON}
    assert asyncio.run(_stored_values(redis_url, key_prefix, {i[0] for i in first})) == first


async def _stored_values(
    redis_url: str, key_prefix: str, sensors: set[str]
) -> dict[Identity, float]:
    """Every reading in the histories of ``sensors``: identity and value."""
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=10)
    reader = ReadingReader(client, StorageSettings(key_prefix=key_prefix), default_catalogue())
    values: dict[Identity, float] = {}
    try:
        for sensor_id in sorted(sensors):
            cursor = None
            while True:
                page = await reader.history(
                    sensor_id,
                    start=datetime(1970, 1, 1, tzinfo=UTC),
                    end=datetime.now(UTC) + timedelta(days=1),
                    limit=5000,
                    cursor=cursor,
                )
                for item in page.items:
                    values[(sensor_id, item.sensor_type, timestamp_ms(item))] = item.value
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    finally:
        await client.aclose()
    return values

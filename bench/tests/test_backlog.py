from __future__ import annotations

import json

import pytest

from ev_bench.backlog import (
    connect,
    fleet_messages,
    publish_bare,
    queue_counts,
    sensor_ids_of,
    topology,
)
from ev_schemas import ReadingValidator


def test_fleet_messages_are_valid_readings_of_every_type() -> None:
    messages = fleet_messages(200, vehicles=5, seed=1, id_prefix="t_")
    validator = ReadingValidator()
    types = set()
    for key, body in messages:
        reading = validator.parse(body, expected_type=key.removeprefix("ev.sensor."))
        types.add(reading.sensor_type)
    assert len(messages) == 200
    assert types == set(topology().sensor_types)


def test_sensor_ids_of_lists_each_sensor_once() -> None:
    messages = fleet_messages(100, vehicles=5, seed=1, id_prefix="t_")
    ids = sensor_ids_of(messages)
    assert ids == sorted({json.loads(body)["sensor_id"] for _, body in messages})


@pytest.mark.integration
def test_publish_bare_returns_once_the_queues_hold_everything(amqp_url: str) -> None:
    messages = fleet_messages(500, vehicles=5, seed=1, id_prefix="t_")
    result = publish_bare(amqp_url, messages)
    assert result.count == 500
    assert result.per_s > 0
    connection = connect(amqp_url)
    try:
        ready, consumers = queue_counts(connection.channel(), topology().queues)
    finally:
        connection.close()
    assert (ready, consumers) == (500, 0)

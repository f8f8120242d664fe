"""Bad kinds break exactly the rule they are named for; tricky kinds stay valid."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from ev_messaging import UNROUTED_QUEUE, routing_key, sensor_type_from_routing_key
from ev_schemas import InvalidReading, ReadingValidator, default_catalogue, to_epoch_ms
from ev_simulator.faults import EXPECTED_REASONS, UNKNOWN_TYPES, FaultMaker
from ev_simulator.fleet import Fleet
from ev_simulator.message import INVALID_KINDS, Kind, Message, SimReading

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
VALIDATOR = ReadingValidator(clock=lambda: START)


def maker(seed: int = 1, types: tuple[str, ...] = ("battery", "speed")) -> FaultMaker:
    catalogue = default_catalogue()
    return FaultMaker(
        random.Random(seed), catalogue, types, tick_ms=1000, now_ms=to_epoch_ms(START)
    )


def template(
    sensor_type: str = "battery", value: float = 55.5, unit: str = "percentage"
) -> SimReading:
    return SimReading("ev_0001", sensor_type, to_epoch_ms(START) - 60_000, value, unit)


@pytest.mark.parametrize("kind", sorted(INVALID_KINDS | {Kind.UNKNOWN_TYPE}))
def test_each_invalid_kind_fails_validation_with_its_reason(kind: Kind) -> None:
    faults = maker()
    for seed in range(60):  # every variant of the kind
        faults.rng.seed(seed)
        for sensor_type, value, unit in (("battery", 55.5, "percentage"), ("speed", 30.1, "mph")):
            message = faults.make(kind, template(sensor_type, value, unit))
            assert message is not None
            assert message.kind is kind
            expected_type = sensor_type_from_routing_key(message.routing_key)
            with pytest.raises(InvalidReading) as failure:
                VALIDATOR.parse(message.body, expected_type=expected_type)
            reason = str(failure.value)
            assert any(part in reason for part in EXPECTED_REASONS[kind]), reason


def test_unknown_types_are_routed_to_a_key_without_a_queue() -> None:
    faults = maker()
    for _ in range(20):
        message = faults.make(Kind.UNKNOWN_TYPE, template())
        assert message is not None
        sensor_type = sensor_type_from_routing_key(message.routing_key)
        assert sensor_type in UNKNOWN_TYPES
        assert sensor_type not in default_catalogue()
        assert message.routing_key != UNROUTED_QUEUE
        assert json.loads(message.body)["sensor_type"] == sensor_type


def test_type_mismatch_keeps_the_original_routing_key() -> None:
    message = maker().make(Kind.TYPE_MISMATCH, template())
    assert message is not None
    assert message.routing_key == routing_key("battery")
    assert json.loads(message.body)["sensor_type"] == "speed"


def test_future_timestamps_stay_future_for_readings_in_the_past() -> None:
    message = maker().make(Kind.FUTURE_TIMESTAMP, template())
    assert message is not None
    future = datetime.fromisoformat(json.loads(message.body)["timestamp"])
    assert (future - START).total_seconds() >= 86_400


def test_duplicates_repeat_an_earlier_valid_body() -> None:
    faults = maker()
    assert faults.make(Kind.DUPLICATE, template()) is None  # nothing sent yet
    original = next(Fleet(2, 1, types=["battery"], start=START, now=START).readings())
    faults.remember(original)
    duplicate = faults.make(Kind.DUPLICATE, template())
    assert duplicate is not None
    assert duplicate.kind is Kind.DUPLICATE
    assert (duplicate.routing_key, duplicate.body) == (original.routing_key, original.body)
    assert duplicate.reading == original.reading
    VALIDATOR.parse(duplicate.body)


def test_out_of_order_readings_are_valid_older_and_distinct() -> None:
    faults = maker()
    assert faults.make(Kind.OUT_OF_ORDER, template()) is None
    readings = Fleet(3, 1, types=["battery", "speed"], start=START, now=START).readings()
    sent: list[Message] = [next(readings) for _ in range(60)]
    for message in sent:
        faults.remember(message)
    identities = {
        (m.reading.sensor_id, m.reading.sensor_type, m.reading.timestamp_ms)
        for m in sent
        if m.reading
    }
    late: list[Message] = []
    while (made := faults.make(Kind.OUT_OF_ORDER, template())) is not None:
        late.append(made)
    assert len(late) == len(sent)  # each valid reading is made late at most once
    for message in late:
        assert message.reading is not None
        reading = VALIDATOR.parse(message.body, expected_type=message.reading.sensor_type)
        identity = (reading.sensor_id, reading.sensor_type, to_epoch_ms(reading.timestamp))
        assert identity not in identities
        identities.add(identity)
        newer = [
            m
            for m in sent
            if m.reading
            and m.reading[:2] == message.reading[:2]
            and m.reading.timestamp_ms > message.reading.timestamp_ms
        ]
        assert newer, "an out-of-order reading is older than one its sensor already sent"

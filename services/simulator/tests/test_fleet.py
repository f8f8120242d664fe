"""The fleet's message stream: deterministic, realistic, valid, and timed like real vehicles."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from ev_messaging import routing_key
from ev_schemas import ReadingValidator, to_epoch_ms
from ev_simulator.errors import ConfigurationError
from ev_simulator.fleet import Fleet, parse_kinds, sensor_ids
from ev_simulator.message import BAD_KINDS, Kind
from ev_simulator.sensors import SIMULATED_TYPES

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def validator_at(moment: datetime) -> ReadingValidator:
    return ReadingValidator(clock=lambda: moment)


def test_sensor_ids() -> None:
    assert sensor_ids(3) == ["ev_0001", "ev_0002", "ev_0003"]
    assert sensor_ids(12_000)[-1] == "ev_12000"
    assert sensor_ids(1, "car-") == ["car-0001"]
    with pytest.raises(ConfigurationError, match="prefix"):
        Fleet(1, 1, id_prefix="bad prefix ")


def test_same_seed_same_bytes_and_other_seed_other_bytes() -> None:
    def bodies(seed: int) -> list[bytes]:
        fleet = Fleet(5, seed, start=START, now=START, bad_ratio=0.1, alt_unit_ratio=0.5)
        return [message.body for message in fleet.messages(3000)]

    assert bodies(42) == bodies(42)
    assert bodies(42) != bodies(43)


def test_adding_vehicles_does_not_change_the_others() -> None:
    small = Fleet(2, 7, start=START, now=START).readings()
    large = Fleet(4, 7, start=START, now=START).readings()
    first_two = [next(large).body for _ in range(4 * 10)][: 2 * 10]
    assert [next(small).body for _ in range(2 * 10)] == first_two


@pytest.mark.parametrize(
    ("vehicles", "tick", "count"),
    [(20, 1.0, 20_000), (3, 10.0, 3 * 10 * 1_500)],  # many vehicles; then hours of driving
)
def test_every_valid_reading_passes_the_validator(vehicles: int, tick: float, count: int) -> None:
    fleet = Fleet(vehicles, 3, start=START, now=START, tick=tick, alt_unit_ratio=0.5)
    messages = list(fleet.messages(count))
    end = datetime.fromtimestamp(messages[-1].sim_time_ms / 1000, UTC)
    validator = validator_at(end)
    units: Counter[str] = Counter()
    for message in messages:
        assert message.kind is Kind.VALID
        assert message.reading is not None
        reading = validator.parse(message.body, expected_type=message.reading.sensor_type)
        assert message.routing_key == routing_key(reading.sensor_type)
        assert to_epoch_ms(reading.timestamp) == message.reading.timestamp_ms
        units[message.reading.unit] += 1
    assert len(units) > 10  # the nine canonical units and alternative ones


def test_each_tick_reports_every_type_of_every_vehicle_once() -> None:
    fleet = Fleet(3, 1, types=["battery", "speed"], start=START, now=START, tick=2.0)
    messages = list(fleet.messages(3 * 2 * 5))
    per_sensor: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for message in messages:
        assert message.reading is not None
        per_sensor[(message.reading.sensor_id, message.reading.sensor_type)].append(
            message.reading.timestamp_ms
        )
    assert len(per_sensor) == 6
    for stamps in per_sensor.values():
        assert [b - a for a, b in itertools.pairwise(stamps)] == [2000] * 4
        assert to_epoch_ms(START) <= stamps[0] < to_epoch_ms(START) + 2000


def test_readings_evolve_over_time() -> None:
    fleet = Fleet(10, 8, types=["odometer", "speed", "battery"], start=START, now=START)
    first: dict[tuple[str, str], float] = {}
    last: dict[tuple[str, str], float] = {}
    for message in fleet.messages(10 * 3 * 1800):  # half an hour
        assert message.reading is not None
        key = (message.reading.sensor_id, message.reading.sensor_type)
        first.setdefault(key, message.reading.value)
        last[key] = message.reading.value
    moved = [
        sid for (sid, kind), km in last.items() if kind == "odometer" and km > first[(sid, kind)]
    ]
    assert len(moved) >= 3
    changed = [key for key in last if key[1] == "battery" and last[key] != first[key]]
    assert len(changed) >= 3


def test_bad_ratio_mixes_every_kind_in() -> None:
    fleet = Fleet(10, 2, start=START, now=START, bad_ratio=0.1)
    kinds = Counter(message.kind for message in fleet.messages(30_000))
    assert sum(kinds.values()) == 30_000
    bad = 30_000 - kinds[Kind.VALID]
    assert 0.08 * 30_000 < bad < 0.12 * 30_000
    assert set(kinds) == set(Kind)


def test_only_the_chosen_kinds() -> None:
    fleet = Fleet(2, 2, start=START, now=START, bad_ratio=0.5, bad_kinds=["duplicate", "bad_unit"])
    kinds = {message.kind for message in fleet.messages(500)}
    assert kinds == {Kind.VALID, Kind.DUPLICATE, Kind.BAD_UNIT}


def test_a_fleet_of_only_bad_messages() -> None:
    fleet = Fleet(2, 2, start=START, now=START, bad_ratio=1.0, bad_kinds=["missing_field"])
    bodies = [json.loads(message.body) for message in fleet.messages(100)]
    assert all(len(body) == 4 for body in bodies)
    with pytest.raises(ConfigurationError, match="need valid"):
        Fleet(2, 2, bad_ratio=1.0, bad_kinds=["duplicate"])


def test_kind_names() -> None:
    assert parse_kinds(["bad_unit", "duplicate", "bad_unit"]) == (Kind.BAD_UNIT, Kind.DUPLICATE)
    assert set(parse_kinds(BAD_KINDS)) == set(Kind) - {Kind.VALID}
    for wrong in ("valid", "nonsense"):
        with pytest.raises(ConfigurationError, match="known: duplicate"):
            parse_kinds([wrong])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vehicles": 0}, "at least one vehicle"),
        ({"tick": 0.001}, "tick"),
        ({"bad_ratio": 1.5}, "between 0 and 1"),
        ({"types": ["battery", "humidity"]}, "cannot produce"),
    ],
)
def test_rejects_impossible_settings(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"vehicles": 1, "seed": 1, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        Fleet(**settings)  # type: ignore[arg-type]


def test_default_start_is_now() -> None:
    before = datetime.now(UTC)
    message = next(Fleet(1, 1).messages())
    assert to_epoch_ms(before) <= message.sim_time_ms < to_epoch_ms(before + timedelta(seconds=2))
    assert set(SIMULATED_TYPES) == set(Fleet(1, 1).types)

"""The report: counts by kind and routing key, and what the pipeline should end up holding."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from ev_simulator.fleet import Fleet
from ev_simulator.message import INVALID_KINDS, Kind
from ev_simulator.report import Report, Tally

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def report_of(count: int, **fleet_args: object) -> tuple[Report, list[object]]:
    fleet = Fleet(4, 5, start=START, now=START, **fleet_args)  # type: ignore[arg-type]
    tally = Tally()
    messages = list(fleet.messages(count))
    for message in messages:
        tally.add(message)
    report = Report(
        seed=5,
        vehicles=4,
        types=fleet.types,
        sent=count,
        confirmed=count,
        returned=0,
        nacked=0,
        elapsed_s=2.0,
        tally=tally,
    )
    return report, messages  # type: ignore[return-value]


def test_counts_and_expectations_add_up() -> None:
    report, _ = report_of(10_000, bad_ratio=0.2)
    data = report.to_dict()
    assert data["published"] == 10_000
    assert data["rate"] == 5000.0
    assert data["complete"] is True
    total = (
        data["valid"] + data["duplicates"] + data["out_of_order"] + sum(data["invalid"].values())
    )
    assert total == 10_000
    assert sum(data["by_routing_key"].values()) == 10_000
    expected = data["expected"]
    assert expected["stored_readings"] == data["valid"] + data["out_of_order"]
    assert expected["unrouted_queue"] == data["invalid"]["unknown_type"]
    assert expected["invalid_queue"] == sum(data["invalid"][str(kind)] for kind in INVALID_KINDS)
    counted = sum(t["count"] for types in data["sensors"].values() for t in types.values())
    assert counted == expected["stored_readings"]


def test_per_sensor_expectation_is_distinct_count_and_newest_reading() -> None:
    report, messages = report_of(5_000, bad_ratio=0.3, bad_kinds=["duplicate", "out_of_order"])
    distinct: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    newest: dict[tuple[str, str], tuple[int, float]] = {}
    for message in messages:
        reading = message.reading  # type: ignore[attr-defined]
        key = (reading.sensor_id, reading.sensor_type)
        distinct[key].add(reading.timestamp_ms)
        newest[key] = max(newest.get(key, (0, 0.0)), (reading.timestamp_ms, reading.value))
    for (sensor_id, sensor_type), stamps in distinct.items():
        seen = report.tally.sensors[(sensor_id, sensor_type)]
        assert seen.count == len(stamps)
        assert (seen.first_ms, seen.last_ms) == (min(stamps), max(stamps))
        assert (seen.last_ms, seen.last_value) == newest[(sensor_id, sensor_type)]
    assert report.duplicates > 0
    assert report.out_of_order > 0


def test_json_file_and_summary(tmp_path: Path) -> None:
    report, _ = report_of(2_000, bad_ratio=0.1)
    path = tmp_path / "report.json"
    report.write_json(path)
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(report.to_dict()))
    sensor = data["sensors"]["ev_0001"]["battery"]
    assert sensor["last"].endswith("Z")
    assert sensor["count"] > 0
    text = report.summary()
    assert "2000 published (confirmed)" in text
    assert "bad: " in text


def test_incomplete_runs_say_so() -> None:
    report, _ = report_of(10)
    report.confirmed, report.error = 7, "BrokerUnavailable: gone"
    assert not report.complete
    assert "error: BrokerUnavailable" in report.summary()
    assert Counter(report.to_dict()["invalid"]) == Counter()
    assert report.invalid == {}
    assert Kind.VALID not in {Kind(k) for k in report.invalid}

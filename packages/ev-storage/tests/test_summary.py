"""Parsing the summary hash into the API's SensorSummary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ev_schemas import default_catalogue
from ev_storage import StorageError
from ev_storage.summary import summary_from_hash

CATALOGUE = default_catalogue()


def test_mean_is_sum_over_count_and_times_are_utc() -> None:
    fields = {
        b"battery:count": b"3",
        b"battery:min": b"49.0",
        b"battery:max": b"52.5",
        b"battery:sum": b"151.5",
        b"battery:first": b"1706788799500",
        b"battery:last": b"1706788801000",
    }
    summary = summary_from_hash("ev_001", fields, CATALOGUE)
    assert summary is not None
    battery = summary.types["battery"]
    assert (battery.count, battery.min, battery.max, battery.mean) == (3, 49.0, 52.5, 50.5)
    assert battery.first == datetime(2024, 2, 1, 11, 59, 59, 500000, tzinfo=UTC)
    assert battery.last == datetime(2024, 2, 1, 12, 0, 1, tzinfo=UTC)
    assert battery.unit == "percentage"


def test_types_follow_catalogue_order_and_unknown_ones_are_left_out() -> None:
    def stats(sensor_type: str) -> dict[str, str]:
        return {
            f"{sensor_type}:{stat}": text
            for stat, text in [
                ("count", "1"),
                ("min", "1.0"),
                ("max", "1.0"),
                ("sum", "1.0"),
                ("first", "0"),
                ("last", "0"),
            ]
        }

    fields = {**stats("speed"), **stats("retired_type"), **stats("battery")}
    summary = summary_from_hash("ev_001", fields, CATALOGUE)
    assert summary is not None
    assert list(summary.types) == ["battery", "speed"]


def test_no_catalogue_type_means_none() -> None:
    assert summary_from_hash("ev_001", {}, CATALOGUE) is None
    assert summary_from_hash("ev_001", {"retired_type:count": "1"}, CATALOGUE) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"battery:count": "1"},
        {
            "battery:count": "0",
            "battery:min": "1",
            "battery:max": "1",
            "battery:sum": "1",
            "battery:first": "0",
            "battery:last": "0",
        },
        {
            "battery:count": "x",
            "battery:min": "1",
            "battery:max": "1",
            "battery:sum": "1",
            "battery:first": "0",
            "battery:last": "0",
        },
    ],
)
def test_damaged_summary_is_a_storage_error(fields: dict[str, str]) -> None:
    with pytest.raises(StorageError, match="damaged summary of 'battery'"):
        summary_from_hash("ev_001", fields, CATALOGUE)

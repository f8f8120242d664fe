from __future__ import annotations

from datetime import UTC, datetime

from ev_schemas import HistoryPage, Reading, SensorSummary, TypeSummary


def test_history_page_serialises_timestamps_with_z() -> None:
    reading = Reading(
        sensor_id="ev_001",
        sensor_type="speed",
        timestamp=datetime(2024, 2, 1, 12, tzinfo=UTC),
        value=50.0,
        unit="km/h",
    )
    page = HistoryPage(sensor_id="ev_001", items=[reading], next_cursor=None)
    assert '"timestamp":"2024-02-01T12:00:00Z"' in page.model_dump_json()


def test_summary_round_trips() -> None:
    summary = SensorSummary(
        sensor_id="ev_001",
        types={
            "speed": TypeSummary(
                count=2,
                min=1.0,
                max=3.0,
                mean=2.0,
                first=datetime(2024, 2, 1, 12, tzinfo=UTC),
                last=datetime(2024, 2, 1, 12, 1, tzinfo=UTC),
                unit="km/h",
            )
        },
    )
    assert SensorSummary.model_validate_json(summary.model_dump_json()) == summary


def test_every_model_schema_carries_an_example() -> None:
    for model in (Reading, HistoryPage, SensorSummary):
        assert model.model_json_schema().get("examples")

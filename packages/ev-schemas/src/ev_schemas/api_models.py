"""Response bodies of the HTTP API, shared by the API service and its clients."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ev_schemas.reading import Reading, SensorId, UtcTimestamp

_READING: dict[str, JsonValue] = {
    "sensor_id": "ev_001",
    "sensor_type": "battery",
    "timestamp": "2024-02-01T12:00:00Z",
    "value": 85.5,
    "unit": "percentage",
}


class SensorReadings(BaseModel):
    """The latest reading of every type a sensor has reported."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sensor_id": "ev_001", "readings": {"battery": _READING}}]}
    )

    sensor_id: SensorId
    readings: dict[str, Reading]


class HistoryPage(BaseModel):
    """One page of history, ascending by timestamp; pass ``next_cursor`` back to continue."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"sensor_id": "ev_001", "items": [_READING], "next_cursor": None}]
        }
    )

    sensor_id: SensorId
    items: list[Reading]
    next_cursor: str | None = Field(
        description="Opaque; null on the last page.",
        examples=[None, "MTcwNjc4ODgwMDAwMDpiYXR0ZXJ5"],
    )


def history_page_json(sensor_id: str, items: Iterable[str], next_cursor: str | None) -> bytes:
    """``HistoryPage(...).model_dump_json()`` of items already in canonical JSON (see
    :func:`ev_schemas.reading.stored_reading_json`), without building a model per item."""
    cursor = "null" if next_cursor is None else json.dumps(next_cursor, ensure_ascii=False)
    return (
        f'{{"sensor_id":{json.dumps(sensor_id, ensure_ascii=False)},"items":[{",".join(items)}],'
        f'"next_cursor":{cursor}}}'
    ).encode()


class FleetSensor(BaseModel):
    """A sensor of the fleet catalogue: its types with the newest reading time of each, and with
    ``include=latest`` the latest reading of each type."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "ev_001",
                    "last_seen": "2024-02-01T12:00:00Z",
                    "types": {"battery": "2024-02-01T12:00:00Z", "speed": "2024-02-01T11:59:59Z"},
                }
            ]
        }
    )

    sensor_id: SensorId
    last_seen: UtcTimestamp = Field(description="Newest reading time over the sensor's types.")
    types: dict[str, UtcTimestamp] = Field(
        description="Each type with retained readings, and the time of its newest reading."
    )
    latest: dict[str, Reading] | None = Field(
        default=None, description="With `include=latest` only: the latest reading of each type."
    )


class FleetPage(BaseModel):
    """One page of the fleet catalogue; pass ``next_cursor`` back to continue."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "sensor_id": "ev_001",
                            "last_seen": "2024-02-01T12:00:00Z",
                            "types": {"battery": "2024-02-01T12:00:00Z"},
                            "latest": {"battery": _READING},
                        }
                    ],
                    "next_cursor": "aTpldl8wMDE",
                }
            ]
        }
    )

    items: list[FleetSensor]
    next_cursor: str | None = Field(
        description="Opaque; null on the last page.", examples=[None, "aTpldl8wMDE"]
    )


class FleetCount(BaseModel):
    """How many sensors of the fleet catalogue match the filters."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"count": 1250}]})

    count: int = Field(ge=0)


class TypeSummary(BaseModel):
    """Aggregates of one sensor type over every distinct reading stored."""

    count: int = Field(ge=0)
    min: float
    max: float
    mean: float
    first: UtcTimestamp = Field(description="Earliest reading timestamp.")
    last: UtcTimestamp = Field(description="Newest reading timestamp.")
    unit: str


class SensorSummary(BaseModel):
    """Per-type aggregates of a sensor."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "ev_001",
                    "types": {
                        "battery": {
                            "count": 2,
                            "min": 84.0,
                            "max": 85.5,
                            "mean": 84.75,
                            "first": "2024-02-01T11:59:00Z",
                            "last": "2024-02-01T12:00:00Z",
                            "unit": "percentage",
                        }
                    },
                }
            ]
        }
    )

    sensor_id: SensorId
    types: dict[str, TypeSummary]


class DependencyHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    latency_ms: float | None = None
    error: str | None = None


class HealthReport(BaseModel):
    """``status`` is ``ok`` only when every dependency answers."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "version": "0.1.0",
                    "dependencies": {"redis": {"status": "ok", "latency_ms": 0.4, "error": None}},
                }
            ]
        }
    )

    status: Literal["ok", "unavailable"]
    version: str
    dependencies: dict[str, DependencyHealth]


class ErrorResponse(BaseModel):
    """Every error answer: ``detail`` says what was wrong."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "no data for sensor 'ev_404'"}]}
    )

    detail: Any

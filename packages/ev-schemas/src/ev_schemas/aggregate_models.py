"""The aggregate answer of the HTTP API (``GET /api/v1/sensor/{id}/aggregate``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ev_schemas.aggregation import AggregationPlan, BucketValues
from ev_schemas.intervals import clamp_ms
from ev_schemas.reading import SensorId, UtcTimestamp
from ev_schemas.timestamps import format_epoch_ms

_BUCKET: dict[str, JsonValue] = {
    "start": "2024-02-01T12:00:00Z",
    "end": "2024-02-01T12:05:00Z",
    "avg": 85.25,
    "min": 85.0,
    "max": 85.5,
    "count": 300,
    "sum": 25575.0,
    "first": 85.5,
    "last": 85.0,
}


class AggregateBucket(BaseModel):
    """One bucket ``[start, end)``; only the aggregators asked for appear."""

    model_config = ConfigDict(json_schema_extra={"examples": [_BUCKET]})

    start: UtcTimestamp = Field(description="First instant of the bucket (inclusive).")
    end: UtcTimestamp = Field(description="End of the bucket (exclusive).")
    avg: float | None = Field(None, description="sum / count; null in an empty bucket.")
    min: float | None = None
    max: float | None = None
    count: int | None = Field(None, ge=0, description="Readings in the bucket (0 if filled).")
    sum: float | None = Field(None, description="Exact sum of the values, rounded once.")
    first: float | None = Field(None, description="Value of the bucket's earliest reading.")
    last: float | None = Field(None, description="Value of the bucket's newest reading.")


class AggregateSeries(BaseModel):
    """One sensor type's readings of ``[start_time, end_time)`` in buckets of ``interval``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sensor_id": "ev_001",
                    "sensor_type": "battery",
                    "unit": "percentage",
                    "interval": "5m",
                    "tz": "UTC",
                    "fill": "none",
                    "aggregators": ["avg", "min", "max", "count", "sum", "first", "last"],
                    "start_time": "2024-02-01T12:00:00Z",
                    "end_time": "2024-02-01T12:05:00Z",
                    "buckets": [_BUCKET],
                }
            ]
        }
    )

    sensor_id: SensorId
    sensor_type: str
    unit: str = Field(description="The type's canonical unit (of every aggregate but count).")
    interval: str = Field(description="The bucket length used (the one max_points chose).")
    tz: str = Field(description="The zone of day and week buckets (IANA name).")
    fill: str
    aggregators: list[str]
    start_time: UtcTimestamp = Field(description="Start of the range (inclusive).")
    end_time: UtcTimestamp = Field(description="End of the range (exclusive).")
    buckets: list[AggregateBucket]


def _number(value: float | int | None) -> str:
    # repr of a finite float is the shortest text that reads back as the same double.
    return "null" if value is None else repr(value)


def buckets_json(plan: AggregationPlan, buckets: Sequence[BucketValues]) -> str:
    """The JSON array of ``buckets`` (``AggregateBucket``s of the plan's aggregators), without a
    model per bucket (a range may have 10,000)."""
    names = plan.aggregators
    items = ",".join(
        f'{{"start":"{format_epoch_ms(clamp_ms(bucket.start_ms))}",'
        f'"end":"{format_epoch_ms(clamp_ms(bucket.end_ms))}"'
        + "".join(f',"{name}":{_number(bucket.value(name))}' for name in names)
        + "}"
        for bucket in buckets
    )
    return f"[{items}]"


def plan_fields(plan: AggregationPlan) -> dict[str, JsonValue]:
    """What an answer says of its plan: interval, tz, fill, aggregators and the range."""
    return {
        "interval": str(plan.interval),
        "tz": plan.tz,
        "fill": plan.fill,
        "aggregators": list(plan.aggregators),
        "start_time": format_epoch_ms(clamp_ms(plan.start_ms)),
        "end_time": format_epoch_ms(clamp_ms(plan.end_ms)),
    }


def aggregate_series_json(
    sensor_id: str,
    sensor_type: str,
    unit: str,
    plan: AggregationPlan,
    buckets: Sequence[BucketValues],
) -> bytes:
    """``AggregateSeries(...).model_dump_json(exclude_unset=True)`` of ``buckets``, without a
    model per bucket (a range may have 10,000)."""
    head = {"sensor_id": sensor_id, "sensor_type": sensor_type, "unit": unit, **plan_fields(plan)}
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    return f'{text[:-1]},"buckets":{buckets_json(plan, buckets)}}}'.encode()

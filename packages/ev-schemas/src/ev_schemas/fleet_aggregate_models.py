"""The fleet-wide aggregate answers of the HTTP API (``GET /api/v1/aggregate``): one combined
series over the sensors a catalogue filter selects, or a page of per-sensor series."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ev_schemas.aggregate_models import AggregateBucket, buckets_json, plan_fields
from ev_schemas.aggregation import AggregationPlan, BucketValues
from ev_schemas.reading import SensorId, UtcTimestamp

_BUCKET: dict[str, JsonValue] = {
    "start": "2024-02-01T12:00:00Z",
    "end": "2024-02-01T13:00:00Z",
    "avg": 71.5,
    "min": 12.0,
    "max": 100.0,
    "count": 86400,
    "sum": 6177600.0,
    "first": 80.5,
    "last": 64.0,
}
_HEAD: dict[str, JsonValue] = {
    "sensor_type": "battery",
    "unit": "percentage",
    "interval": "1h",
    "tz": "UTC",
    "fill": "none",
    "aggregators": ["avg", "min", "max", "count", "sum", "first", "last"],
    "start_time": "2024-02-01T12:00:00Z",
    "end_time": "2024-02-01T13:00:00Z",
}


class _FleetHead(BaseModel):
    sensor_type: str
    unit: str = Field(description="The type's canonical unit (of every aggregate but count).")
    interval: str = Field(description="The bucket length used (the one max_points chose).")
    tz: str = Field(description="The zone of day and week buckets (IANA name).")
    fill: str
    aggregators: list[str]
    start_time: UtcTimestamp = Field(description="Start of the range (inclusive).")
    end_time: UtcTimestamp = Field(description="End of the range (exclusive).")


class FleetAggregate(_FleetHead):
    """The readings of every selected sensor of one type, combined into one series of buckets:
    count and sum add up, min and max over all, avg the exact total over the count, first and
    last by (timestamp, sensor id)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_HEAD, "sensors": 24, "buckets": [_BUCKET]}]}
    )

    sensors: int = Field(ge=0, description="How many sensors the filter selected and combined.")
    buckets: list[AggregateBucket]


class FleetAggregateItem(BaseModel):
    """One sensor's buckets."""

    sensor_id: SensorId
    buckets: list[AggregateBucket]


class FleetAggregatePage(_FleetHead):
    """``group_by=sensor``: one page of the selected sensors (catalogue order, by id), each with
    its own buckets; pass ``next_cursor`` back to continue."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_HEAD,
                    "items": [{"sensor_id": "bus_001", "buckets": [_BUCKET]}],
                    "next_cursor": "aTpidXNfMDAx",
                }
            ]
        }
    )

    items: list[FleetAggregateItem]
    next_cursor: str | None = Field(
        description="Opaque (the catalogue's, as /sensors?sort=id); null on the last page.",
        examples=[None, "aTpidXNfMDAx"],
    )


def _head_json(sensor_type: str, unit: str, plan: AggregationPlan) -> str:
    """The answer's opening fields as JSON, without the closing brace."""
    head = {"sensor_type": sensor_type, "unit": unit, **plan_fields(plan)}
    return json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]


def fleet_aggregate_json(
    sensor_type: str,
    unit: str,
    plan: AggregationPlan,
    sensors: int,
    buckets: Sequence[BucketValues],
) -> bytes:
    """:class:`FleetAggregate`'s JSON (only the plan's aggregators in each bucket)."""
    head = _head_json(sensor_type, unit, plan)
    return f'{head},"sensors":{sensors},"buckets":{buckets_json(plan, buckets)}}}'.encode()


def fleet_aggregate_page_json(
    sensor_type: str,
    unit: str,
    plan: AggregationPlan,
    items: Sequence[tuple[str, Sequence[BucketValues]]],
    next_cursor: str | None,
) -> bytes:
    """:class:`FleetAggregatePage`'s JSON of ``(sensor_id, buckets)`` items."""
    parts = ",".join(
        f'{{"sensor_id":{json.dumps(sensor_id)},"buckets":{buckets_json(plan, buckets)}}}'
        for sensor_id, buckets in items
    )
    cursor = json.dumps(next_cursor)
    head = _head_json(sensor_type, unit, plan)
    return f'{head},"items":[{parts}],"next_cursor":{cursor}}}'.encode()

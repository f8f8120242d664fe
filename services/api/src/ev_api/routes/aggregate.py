"""Time-bucketed aggregates of one sensor type: ``/aggregate`` (JSON, or CSV by ``Accept``) and
``/aggregate.csv``.

The parameters are checked by ``ev_schemas.AggregationPlan`` (a bad one is a 422 naming it);
the buckets come from ``ev_storage.aggregate_history``. Registered before the sensors router,
whose ``/{sensor_id}/{sensor_type}`` would otherwise take ``aggregate`` for a sensor type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from ev_api.csv_export import CSV_MEDIA_TYPE, attachment, complete_marker, csv_field
from ev_api.csv_pages import VARY_ACCEPT
from ev_api.deps import ResourcesDep, SettingsDep, StrictQuery
from ev_api.errors import error_responses
from ev_api.negotiation import prefers
from ev_api.params import SensorIdPath, TimeQuery, invalid_query, parse_type_filter
from ev_schemas import (
    AGGREGATORS,
    FILLS,
    LADDER,
    MAX_BUCKETS,
    AggregateSeries,
    AggregationPlan,
    BucketValues,
    InvalidAggregation,
    aggregate_series_json,
    format_epoch_ms,
    to_epoch_ms_ceil,
    utc_now,
)
from ev_schemas.intervals import MIN_MS, clamp_ms
from ev_storage import aggregate_history

router = APIRouter(prefix="/sensor", tags=["sensors"], dependencies=[StrictQuery])

#: Buckets when neither ``interval`` nor ``max_points`` is given.
DEFAULT_MAX_POINTS = 1000
CSV_EXAMPLE = (
    "sensor_id,sensor_type,start,end,avg,min,max,count,sum,first,last,unit\r\n"
    "ev_001,battery,2024-02-01T12:00:00Z,2024-02-01T12:05:00Z,85.25,85.0,85.5,300,25575.0,"
    "85.5,85.0,percentage\r\n"
    "ev_001,battery,2024-02-01T12:05:00Z,2024-02-01T12:10:00Z,,,,0,,,,percentage\r\n"
    "# complete: 2 rows\r\n"
)
CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}}


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    """A checked aggregate request: the sensor type and the plan."""

    sensor_type: str
    plan: AggregationPlan


async def aggregate_query(
    resources: ResourcesDep,
    settings: SettingsDep,
    sensor_type: Annotated[
        str, Query(description="The one configured type to aggregate.", examples=["battery"])
    ],
    start_time: TimeQuery = None,
    end_time: TimeQuery = None,
    interval: Annotated[
        str | None,
        Query(
            description="Bucket length: a whole number and a unit `s`, `m`, `h` (aligned to "
            "the Unix epoch), `d` (calendar days in `tz`) or `w` (ISO weeks from Monday, in "
            "`tz`); at most a year. Not with `max_points`.",
            examples=["5m"],
        ),
    ] = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_BUCKETS,
            description="Instead of `interval`: the shortest of "
            f"{', '.join(LADDER)} giving at most this many buckets. Default (neither given): "
            f"{DEFAULT_MAX_POINTS}.",
            examples=[500],
        ),
    ] = None,
    agg: Annotated[
        list[str] | None,
        Query(
            description=f"Aggregators, comma-separated or repeated: {', '.join(AGGREGATORS)} "
            "(first and last: the values of the bucket's earliest and newest reading). "
            "Default: all.",
            examples=["avg,min,max"],
        ),
    ] = None,
    fill: Annotated[
        str | None,
        Query(
            description="Empty buckets: `none` (left out, the default), `null` (count 0, "
            "other aggregates null) or `previous` (count 0, the other aggregates of the "
            "previous non-empty bucket of the range).",
            examples=["null"],
            json_schema_extra={"enum": list(FILLS)},
        ),
    ] = None,
    tz: Annotated[
        str | None,
        Query(
            description="IANA time zone of `d` and `w` buckets (local midnights, 23 or 25 "
            "hours across DST). Default UTC.",
            examples=["Europe/Berlin"],
        ),
    ] = None,
) -> AggregateQuery:
    """``end_time`` defaults to now, ``start_time`` to HISTORY_RETENTION_S before it."""
    try:
        types = parse_type_filter([sensor_type], resources.catalogue) or ()
    except ValueError as exc:
        raise invalid_query("sensor_type", str(exc), sensor_type) from None
    if len(types) != 1:
        raise invalid_query("sensor_type", "aggregate one sensor type at a time", sensor_type)
    end = end_time if end_time is not None else utc_now()
    if start_time is not None and start_time > end:
        raise invalid_query("start_time", "start_time is after end_time", start_time)
    end_ms = to_epoch_ms_ceil(end)
    if start_time is None:  # in whole numbers: datetime arithmetic overflows near year 1
        start_ms = max(end_ms - settings.history_retention // timedelta(milliseconds=1), MIN_MS)
    else:
        start_ms = to_epoch_ms_ceil(start_time)
    given = {"interval": interval, "max_points": max_points, "agg": agg, "fill": fill, "tz": tz}
    try:
        plan = AggregationPlan.make(
            start_ms,
            end_ms,
            interval=interval,
            max_points=max_points,
            tz=tz,
            agg=agg,
            fill=fill,
            default_max_points=DEFAULT_MAX_POINTS,
        )
    except InvalidAggregation as exc:
        raise invalid_query(exc.field, exc.reason, given.get(exc.field)) from None
    return AggregateQuery(types[0], plan)


AggregateQueryDep = Annotated[AggregateQuery, Depends(aggregate_query)]


def aggregate_csv(
    sensor_id: str,
    sensor_type: str,
    unit: str,
    plan: AggregationPlan,
    buckets: list[BucketValues],
) -> bytes:
    """The buckets as CSV (the export's conventions: CRLF, the completeness marker); an
    undefined aggregate is an empty field."""
    head = f"{csv_field(sensor_id)},{csv_field(sensor_type)},"
    tail = f",{csv_field(unit)}\r\n"
    lines = [",".join(("sensor_id", "sensor_type", "start", "end", *plan.aggregators, "unit"))]
    lines[0] += "\r\n"
    for bucket in buckets:
        values = (bucket.value(name) for name in plan.aggregators)
        cells = ",".join("" if value is None else repr(value) for value in values)
        start = format_epoch_ms(clamp_ms(bucket.start_ms))
        end = format_epoch_ms(clamp_ms(bucket.end_ms))
        lines.append(f"{head}{start},{end},{cells}{tail}")
    return "".join(lines).encode() + complete_marker(len(buckets))


async def _answer(
    sensor_id: str, resources: ResourcesDep, query: AggregateQuery, as_csv: bool
) -> Response:
    unit = resources.catalogue[query.sensor_type].unit
    buckets = await aggregate_history(resources.reader, sensor_id, query.sensor_type, query.plan)
    if as_csv:
        body = aggregate_csv(sensor_id, query.sensor_type, unit, query.plan, buckets)
        filename = f"{sensor_id}_{query.sensor_type}_aggregate.csv"
        return Response(
            body, media_type=CSV_MEDIA_TYPE, headers={**VARY_ACCEPT, **attachment(filename)}
        )
    body = aggregate_series_json(sensor_id, query.sensor_type, unit, query.plan, buckets)
    return Response(body, media_type="application/json", headers=VARY_ACCEPT)


@router.get(
    "/{sensor_id}/aggregate",
    response_model=AggregateSeries,
    responses={
        200: {"description": "JSON; CSV when `Accept` prefers `text/csv`.", "content": CSV_CONTENT},
        **error_responses(401, 422, 503),
    },
)
async def aggregate(
    request: Request, sensor_id: SensorIdPath, resources: ResourcesDep, query: AggregateQueryDep
) -> Response:
    """One sensor type's readings in time buckets: avg, min, max, count, sum, first, last.

    The range is `[start_time, end_time)`: the start inclusive, the end exclusive like each
    bucket's, so consecutive ranges neither overlap nor miss a reading. Buckets of `s`, `m`
    and `h` intervals are aligned to the Unix epoch; `d` and `w` buckets are calendar days and
    ISO weeks (from Monday) in `tz`. `max_points` instead of `interval` picks the shortest
    "nice" interval giving at most that many buckets. A request may produce at most 10,000
    buckets. `sum` is the exact sum rounded once and `avg` that sum over the count, so the
    answer is exactly that of aggregating the readings `/history` returns for the range.
    `Accept: text/csv` gives the buckets as CSV (also at `/aggregate.csv`).
    """
    as_csv = prefers(request.headers.get("accept"), CSV_MEDIA_TYPE)
    return await _answer(sensor_id, resources, query, as_csv)


@router.get(
    "/{sensor_id}/aggregate.csv",
    response_class=Response,
    responses={
        200: {
            "description": "The buckets as CSV, ending with `# complete: <N> rows`.",
            "content": CSV_CONTENT,
        },
        **error_responses(401, 422, 503),
    },
)
async def aggregate_csv_route(
    sensor_id: SensorIdPath, resources: ResourcesDep, query: AggregateQueryDep
) -> Response:
    """The aggregate's buckets as one CSV download (the parameters of `/aggregate`).

    Columns `sensor_id,sensor_type,start,end`, one per aggregator asked for, and `unit`; an
    undefined aggregate (an empty bucket's avg with `fill=null`) is an empty field. The last
    line is `# complete: <N> rows` (read with `comment="#"`).
    """
    return await _answer(sensor_id, resources, query, True)

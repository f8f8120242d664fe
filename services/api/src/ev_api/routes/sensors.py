"""REST reads of one sensor: latest values, one type's latest, history pages and aggregates.

Latest readings are returned as the bytes Redis holds (canonical JSON written by the consumer):
the hot path neither parses nor re-serialises them. ``history`` and ``summary`` are declared before
``{sensor_type}`` so those words are never taken for a type (they are reserved names anyway).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError

from ev_api.deps import ReaderDep, ResourcesDep, SettingsDep, StrictQuery
from ev_api.errors import error_responses
from ev_api.params import SensorIdPath, SensorTypePath, TimeQuery, parse_type_filter
from ev_schemas import HistoryPage, Reading, SensorReadings, SensorSummary, utc_now
from ev_storage import CURSOR_PATTERN, InvalidCursor

router = APIRouter(prefix="/sensor", tags=["sensors"], dependencies=[StrictQuery])

JSON = "application/json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _no_data(sensor_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no data for sensor {sensor_id!r}")


def _invalid(field: str, message: str, value: object, kind: str = "value_error") -> Exception:
    """A 422 in FastAPI's own shape, for checks that depend on settings or on each other."""
    return RequestValidationError(
        [{"type": kind, "loc": ("query", field), "msg": message, "input": value}]
    )


@router.get(
    "/{sensor_id}",
    response_model=SensorReadings,
    responses=error_responses(401, 404, 422, 503),
)
async def latest_readings(sensor_id: SensorIdPath, reader: ReaderDep) -> Response:
    """The latest reading of every type the sensor has reported."""
    raw = await reader.latest_all_raw(sensor_id)
    if not raw:
        raise _no_data(sensor_id)
    # Type names are catalogue names ([a-z0-9_]) and the stored values are canonical JSON, so
    # plain concatenation yields valid JSON.
    readings = b",".join(b'"%s":%s' % (name.encode(), value) for name, value in raw.items())
    body = b'{"sensor_id":%s,"readings":{%s}}' % (json.dumps(sensor_id).encode(), readings)
    return Response(body, media_type=JSON)


@router.get(
    "/{sensor_id}/history",
    response_model=HistoryPage,
    responses=error_responses(401, 422, 503),
)
async def history(
    sensor_id: SensorIdPath,
    resources: ResourcesDep,
    settings: SettingsDep,
    start_time: TimeQuery = None,
    end_time: TimeQuery = None,
    sensor_type: Annotated[
        list[str] | None,
        Query(
            description="Only these types: repeat the parameter or separate types with commas. "
            "Default: every configured type.",
            examples=["battery,speed"],
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="Items per page; default HISTORY_DEFAULT_LIMIT (100), "
            "at most HISTORY_MAX_LIMIT (1000).",
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            description="The next_cursor of the previous page, unchanged. Empty (`cursor=`) "
            "or absent: the first page.",
            # Empty is allowed besides the cursors this API writes: what the check below does.
            json_schema_extra={"pattern": f"^(?:{CURSOR_PATTERN[1:-1]})?$"},
        ),
    ] = None,
) -> Response:
    """Stored readings between two instants, ascending by timestamp, one page at a time.

    Both bounds are inclusive RFC 3339 date-times with a zone (`Z` or an offset; a `+` must be
    sent as `%2B`). `end_time` defaults to now and `start_time` to the Unix epoch, i.e. all the
    retained history. With several types, items are merged by (timestamp, type).
    """
    end = end_time if end_time is not None else utc_now()
    start = start_time if start_time is not None else EPOCH
    if start > end:
        raise _invalid("start_time", "start_time is after end_time", start_time)
    if limit is None:
        limit = settings.history_default_limit
    elif limit > settings.history_max_limit:
        raise _invalid(
            "limit",
            f"Input should be less than or equal to {settings.history_max_limit}",
            limit,
            "less_than_equal",
        )
    if cursor == "":
        # Clients that send every parameter, and paging loops starting from an empty token
        # (Google's AIP-158 convention), mean the first page.
        cursor = None
    reader, catalogue = resources.reader, resources.catalogue
    try:
        types = parse_type_filter(sensor_type, catalogue)
    except ValueError as exc:
        raise _invalid("sensor_type", str(exc), sensor_type) from None
    try:
        # The page's JSON straight from the stored records: no model per item.
        body = await reader.history_json(
            sensor_id, start=start, end=end, sensor_types=types, limit=limit, cursor=cursor
        )
    except InvalidCursor as exc:
        raise _invalid("cursor", str(exc), cursor) from exc
    return Response(body, media_type=JSON)


@router.get(
    "/{sensor_id}/summary",
    response_model=SensorSummary,
    responses=error_responses(401, 404, 422, 503),
)
async def summary(sensor_id: SensorIdPath, reader: ReaderDep) -> Response:
    """Per-type count, minimum, maximum, mean and first and last timestamps."""
    found = await reader.summary(sensor_id)
    if found is None:
        raise _no_data(sensor_id)
    return Response(found.model_dump_json(), media_type=JSON)


@router.get(
    "/{sensor_id}/{sensor_type}",
    response_model=Reading,
    responses=error_responses(401, 404, 422, 503),
)
async def latest_reading(
    sensor_id: SensorIdPath, sensor_type: SensorTypePath, resources: ResourcesDep
) -> Response:
    """The latest reading of one type.

    A type that is not configured is a 404 too; its detail lists the configured types.
    """
    catalogue = resources.catalogue
    if sensor_type not in catalogue:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown sensor type {sensor_type!r}; configured: {', '.join(catalogue)}",
        )
    raw = await resources.reader.latest_raw(sensor_id, sensor_type)
    if raw is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no {sensor_type} reading for sensor {sensor_id!r}"
        )
    return Response(raw, media_type=JSON)

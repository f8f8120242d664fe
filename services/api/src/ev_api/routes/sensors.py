"""REST reads of one sensor: latest values, one type's latest, history pages and aggregates.

Latest readings are returned as the bytes Redis holds (canonical JSON written by the consumer):
the hot path neither parses nor re-serialises them. ``history`` and ``summary`` are declared before
``{sensor_type}`` so those words are never taken for a type (they are reserved names anyway).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from ev_api.csv_export import CSV_MEDIA_TYPE
from ev_api.csv_pages import HISTORY_CSV_PAGE, VARY_ACCEPT, csv_page
from ev_api.deps import ReaderDep, ResourcesDep, SettingsDep, StrictQuery
from ev_api.errors import error_responses
from ev_api.history_filter import HistoryFilterDep
from ev_api.negotiation import prefers
from ev_api.params import SensorIdPath, SensorTypePath, invalid_query
from ev_schemas import HistoryPage, Reading, SensorReadings, SensorSummary
from ev_storage import CURSOR_PATTERN, InvalidCursor

router = APIRouter(prefix="/sensor", tags=["sensors"], dependencies=[StrictQuery])

JSON = "application/json"


def _no_data(sensor_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no data for sensor {sensor_id!r}")


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
    responses={**HISTORY_CSV_PAGE, **error_responses(401, 422, 503)},
)
async def history(
    request: Request,
    sensor_id: SensorIdPath,
    resources: ResourcesDep,
    settings: SettingsDep,
    selected: HistoryFilterDep,
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
    `Accept: text/csv` gives the same page as CSV (the next page's URL in a `Link` header);
    the whole range as one CSV is `/history.csv`.
    """
    if limit is None:
        limit = settings.history_default_limit
    elif limit > settings.history_max_limit:
        raise invalid_query(
            "limit",
            f"Input should be less than or equal to {settings.history_max_limit}",
            limit,
            "less_than_equal",
        )
    if cursor == "":
        # Clients that send every parameter, and paging loops starting from an empty token
        # (Google's AIP-158 convention), mean the first page.
        cursor = None
    page: dict[str, Any] = {
        "start": selected.start,
        "end": selected.end,
        "sensor_types": selected.types,
        "limit": limit,
        "cursor": cursor,
    }
    try:
        if prefers(request.headers.get("accept"), CSV_MEDIA_TYPE):
            rows, next_cursor = await resources.reader.history_rows(sensor_id, **page)
            return csv_page(request, sensor_id, resources.catalogue, rows, next_cursor)
        # The page's JSON straight from the stored records: no model per item.
        body = await resources.reader.history_json(sensor_id, **page)
    except InvalidCursor as exc:
        raise invalid_query("cursor", str(exc), cursor) from exc
    return Response(body, media_type=JSON, headers=VARY_ACCEPT)


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

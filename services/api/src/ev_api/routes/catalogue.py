"""The fleet catalogue: which sensors exist, filtered, sorted and paged, and how many.

Served from ev-storage's catalogue index (``CatalogueReader``), which the consumer keeps exact on
ingest; pages are built as JSON here without a model per item, like history pages.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BeforeValidator
from starlette.requests import HTTPConnection

from ev_api.deps import ResourcesDep, SettingsDep, StrictQuery, get_resources
from ev_api.errors import error_responses
from ev_api.params import rfc3339
from ev_schemas import FleetCount, FleetPage, format_epoch_ms
from ev_storage import (
    CURSOR_PATTERN,
    CatalogueFilter,
    CatalogueReader,
    InvalidCursor,
)

router = APIRouter(prefix="/sensors", tags=["catalogue"], dependencies=[StrictQuery])

JSON = "application/json"
INCLUDES = ("latest",)


def _invalid(field: str, message: str, value: object, kind: str = "value_error") -> Exception:
    """A 422 in FastAPI's own shape, for checks that depend on settings or on each other."""
    return RequestValidationError(
        [{"type": kind, "loc": ("query", field), "msg": message, "input": value}]
    )


async def get_catalogue(connection: HTTPConnection) -> CatalogueReader:
    reader = get_resources(connection).catalogue_reader
    if reader is None:
        raise RuntimeError("the app's lifespan made no catalogue reader")
    return reader


CatalogueDep = Annotated[CatalogueReader, Depends(get_catalogue)]


async def fleet_filter(
    resources: ResourcesDep,
    prefix: Annotated[
        str,
        Query(
            description="Only sensors whose id starts with this (case-sensitive): at most 64 "
            "letters, digits, '_', '-' or '.'. Empty: every sensor.",
            examples=["ev_00"],
        ),
    ] = "",
    sensor_type: Annotated[
        str | None,
        Query(
            description="Only sensors with retained readings of this configured type.",
            examples=["battery"],
        ),
    ] = None,
    seen_after: Annotated[
        AwareDatetime | None,
        BeforeValidator(rfc3339),
        Query(
            description="Only sensors whose newest reading (of any type) is at or after this "
            "RFC 3339 date-time with a zone (a `+` must be sent as `%2B`).",
            examples=["2024-02-01T12:00:00Z"],
        ),
    ] = None,
    seen_before: Annotated[
        AwareDatetime | None,
        BeforeValidator(rfc3339),
        Query(
            description="Only sensors whose newest reading (of any type) is at or before this "
            "RFC 3339 date-time with a zone.",
            examples=["2024-02-01T13:00:00Z"],
        ),
    ] = None,
) -> CatalogueFilter:
    """The filters shared by the list and the count, checked (422 naming the parameter)."""
    if sensor_type is not None and sensor_type not in resources.catalogue:
        raise _invalid(
            "sensor_type",
            f"unknown sensor type {sensor_type!r}; configured: {', '.join(resources.catalogue)}",
            sensor_type,
        )
    if len(prefix) > 64 or not all(c.isascii() and (c.isalnum() or c in "_-.") for c in prefix):
        raise _invalid("prefix", "must be at most 64 letters, digits, '_', '-' or '.'", prefix)
    if seen_after is not None and seen_before is not None and seen_after > seen_before:
        raise _invalid("seen_after", "seen_after is after seen_before", seen_after)
    return CatalogueFilter(
        prefix=prefix, sensor_type=sensor_type, seen_after=seen_after, seen_before=seen_before
    )


FilterDep = Annotated[CatalogueFilter, Depends(fleet_filter)]


@router.get("", response_model=FleetPage, responses=error_responses(401, 422, 503))
async def list_sensors(
    where: FilterDep,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    sort: Annotated[
        Literal["id", "last_seen"],
        Query(
            description="`id`: ascending by sensor id (byte order); `last_seen`: newest reading "
            "first, sensors seen at the same millisecond by id, descending.",
            examples=["last_seen"],
        ),
    ] = "id",
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="Sensors per page; default HISTORY_DEFAULT_LIMIT (100), "
            "at most HISTORY_MAX_LIMIT (1000).",
            examples=[100],
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            description="The next_cursor of the previous page (same `sort`), unchanged. Empty "
            "or absent: the first page.",
            examples=["aTpldl8wMDE"],
            json_schema_extra={"pattern": f"^(?:{CURSOR_PATTERN[1:-1]})?$"},
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        Query(
            description="`latest`: each item carries the latest reading of each of its types.",
            examples=["latest"],
        ),
    ] = None,
) -> Response:
    """The fleet: every sensor with retained readings, its types and their newest times.

    Filters combine (all must hold); `seen_after` and `seen_before` are inclusive and apply to
    the newest reading of any type. Pages follow one another by `next_cursor`, without gaps or
    repeats; a sensor that reports between two pages may move in the `last_seen` order.
    """
    if limit is None:
        limit = settings.history_default_limit
    elif limit > settings.history_max_limit:
        raise _invalid(
            "limit",
            f"Input should be less than or equal to {settings.history_max_limit}",
            limit,
            "less_than_equal",
        )
    wanted = _includes(include)
    try:
        page = await catalogue.page(where, order=sort, limit=limit, cursor=cursor or None)
    except InvalidCursor as exc:
        raise _invalid("cursor", str(exc), cursor) from exc
    latest = await catalogue.latest_raw(page.items) if "latest" in wanted else None
    items = []
    for n, item in enumerate(page.items):
        types = ",".join(f'"{t}":"{format_epoch_ms(ms)}"' for t, ms in item.types.items())
        text = (
            f'{{"sensor_id":{json.dumps(item.sensor_id)},'
            f'"last_seen":"{format_epoch_ms(item.last_seen_ms)}","types":{{{types}}}'
        )
        if latest is not None:
            # Type names are catalogue names and the stored values canonical JSON.
            found = ",".join(f'"{t}":{raw.decode()}' for t, raw in latest[n].items())
            text += f',"latest":{{{found}}}'
        items.append(text + "}")
    cursor_json = "null" if page.next_cursor is None else json.dumps(page.next_cursor)
    body = f'{{"items":[{",".join(items)}],"next_cursor":{cursor_json}}}'
    return Response(body.encode(), media_type=JSON)


@router.get("/count", response_model=FleetCount, responses=error_responses(401, 422, 503))
async def count_sensors(where: FilterDep, catalogue: CatalogueDep) -> FleetCount:
    """How many sensors match the filters (the same as the list's), exactly."""
    return FleetCount(count=await catalogue.count(where))


def _includes(values: list[str] | None) -> set[str]:
    """What ``include`` asks for (repeated or comma-separated); 422 for anything unknown."""
    names = {part.strip() for value in values or [] for part in value.split(",") if part.strip()}
    unknown = sorted(names - set(INCLUDES))
    if unknown:
        raise _invalid(
            "include",
            f"unknown include {', '.join(map(repr, unknown))}; possible: {', '.join(INCLUDES)}",
            values,
        )
    return names

"""The fleet-wide aggregate: ``/aggregate`` over the sensors a catalogue filter selects, as one
combined series or (``group_by=sensor``) a page of per-sensor series.

The parameters are those of the per-sensor aggregate (``routes.aggregate.aggregate_query``) and
of the catalogue (``routes.catalogue.fleet_filter``), checked by the same code with the same
422s; the sensors come from ev-storage's catalogue reader, the buckets from
``ev_storage.fleet_aggregate``. Both forms are bounded: a combined series takes at most
:data:`MAX_COMBINED_SENSORS` sensors, a page at most :data:`MAX_GROUP_LIMIT`, and no request
computes more than :data:`MAX_SENSOR_BUCKETS` buckets x sensors.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from ev_api.deps import Resources, ResourcesDep, StrictQuery
from ev_api.errors import error_responses
from ev_api.params import invalid_query
from ev_api.routes.aggregate import AggregateQuery, AggregateQueryDep
from ev_api.routes.catalogue import CatalogueDep, FilterDep
from ev_schemas import (
    FleetAggregate,
    FleetAggregatePage,
    fleet_aggregate_json,
    fleet_aggregate_page_json,
)
from ev_storage import (
    CURSOR_PATTERN,
    CatalogueFilter,
    CatalogueReader,
    InvalidCursor,
    TooManySensors,
    aggregate_each,
    fleet_aggregate,
    select_sensors,
)

router = APIRouter(prefix="/aggregate", tags=["catalogue"], dependencies=[StrictQuery])

JSON = "application/json"
#: The most sensors one combined series takes; more is a 422 saying how many were selected.
MAX_COMBINED_SENSORS = 1000
#: The most buckets x sensors one request computes: the default 1,000 buckets over 1,000
#: sensors, or a page of 100 sensors of 10,000 buckets each.
MAX_SENSOR_BUCKETS = 1_000_000
DEFAULT_GROUP_LIMIT = 10
MAX_GROUP_LIMIT = 100


@router.get(
    "",
    response_model=FleetAggregate | FleetAggregatePage,
    responses={
        200: {"description": "`FleetAggregate`; with `group_by=sensor`, `FleetAggregatePage`."},
        **error_responses(401, 422, 503),
    },
)
async def aggregate_fleet(
    request: Request,
    query: AggregateQueryDep,
    where: FilterDep,
    catalogue: CatalogueDep,
    resources: ResourcesDep,
    group_by: Annotated[
        Literal["sensor"] | None,
        Query(
            description="`sensor`: one series per sensor, paged (`limit`, `cursor`), instead "
            "of one series combining them all.",
            examples=["sensor"],
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_GROUP_LIMIT,
            description=f"With `group_by=sensor`: sensors per page, default "
            f"{DEFAULT_GROUP_LIMIT}, at most {MAX_GROUP_LIMIT}.",
            examples=[DEFAULT_GROUP_LIMIT],
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            description="With `group_by=sensor`: the previous page's `next_cursor`, unchanged "
            "(a `/sensors?sort=id` cursor continues here too). Empty or absent: the first page.",
            examples=["aTpidXNfMDAx"],
            json_schema_extra={"pattern": f"^(?:{CURSOR_PATTERN[1:-1]})?$"},
        ),
    ] = None,
) -> Response:
    """One sensor type aggregated over the sensors a catalogue filter selects.

    The sensors are those `/sensors` lists for the same `prefix`, `sensor_type`, `seen_after`
    and `seen_before`; the time parameters are those of `/sensor/{sensor_id}/aggregate`, with
    the same meaning. By default the answer is one series combining every selected sensor's
    readings, as if they were one sensor's: `count` and `sum` add up (the sum exact, rounded
    once), `min` and `max` are over all readings, `avg` is the exact sum over the count, and
    `first` and `last` are the values of the bucket's earliest and newest reading ordered by
    (timestamp, sensor id): of two sensors reporting at the same millisecond, `first` takes the
    smaller id and `last` the larger. `sensors` says how many were combined (those without
    readings in the range included); a filter selecting more than 1,000 sensors is a 422.
    With `group_by=sensor` the answer is a page of sensors in id order, each with its own
    buckets, followed by `next_cursor`. A request computes at most 1,000,000 buckets x sensors.
    """
    if group_by is None:
        for name, value in (("limit", limit), ("cursor", cursor)):
            if value is not None:
                raise invalid_query(name, f"{name} pages group_by=sensor only", value)
        return await _combined(request, query, where, catalogue, resources)
    limit = DEFAULT_GROUP_LIMIT if limit is None else limit
    try:
        page = await catalogue.page(where, order="id", limit=limit, cursor=cursor or None)
    except InvalidCursor as exc:
        raise invalid_query("cursor", str(exc), cursor) from exc
    ids = [item.sensor_id for item in page.items]
    each = await aggregate_each(resources.reader, ids, query.sensor_type, query.plan)
    unit = resources.catalogue[query.sensor_type].unit
    items = list(zip(ids, each, strict=True))
    body = fleet_aggregate_page_json(query.sensor_type, unit, query.plan, items, page.next_cursor)
    return Response(body, media_type=JSON)


async def _combined(
    request: Request,
    query: AggregateQuery,
    where: CatalogueFilter,
    catalogue: CatalogueReader,
    resources: Resources,
) -> Response:
    """The default form: one series over every selected sensor, within both bounds."""
    try:
        ids = await select_sensors(catalogue, where, limit=MAX_COMBINED_SENSORS)
    except TooManySensors as exc:
        raise invalid_query(
            "prefix",
            f"the filter selects {exc.selected} sensors, more than the {exc.limit} one "
            "combined series may take: narrow it (a longer prefix, seen_after or seen_before) "
            "or page through them with group_by=sensor",
            where.prefix,
        ) from None
    buckets = query.plan.grid.count(query.plan.start_ms, query.plan.end_ms)
    if buckets * len(ids) > MAX_SENSOR_BUCKETS:
        field = "interval" if "interval" in request.query_params else "max_points"
        most = MAX_SENSOR_BUCKETS // len(ids)
        raise invalid_query(
            field,
            f"{buckets} buckets x {len(ids)} sensors is more than {MAX_SENSOR_BUCKETS} per "
            f"request: at most {most} buckets for {len(ids)} sensors (max_points={most}, a "
            "longer interval or a shorter range), or fewer sensors",
            request.query_params.get(field),
        )
    found = await fleet_aggregate(resources.reader, ids, query.sensor_type, query.plan)
    unit = resources.catalogue[query.sensor_type].unit
    body = fleet_aggregate_json(query.sensor_type, unit, query.plan, len(ids), found)
    return Response(body, media_type=JSON)

"""Alarm episodes of a sensor, and acknowledging one (docs/alarms.md).

Episodes are kept by the consumer's write script next to the sensor (``ev_storage.alarms.lua``)
and read here with ``ev_storage.AlarmReader``. Registered before the sensors router, whose
``/{sensor_id}/{sensor_type}`` would take ``alarms`` for a type (it is a reserved name anyway).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, status
from starlette.requests import HTTPConnection

from ev_api.deps import StrictQuery, get_resources
from ev_api.errors import error_responses
from ev_api.params import SensorIdPath, invalid_query
from ev_schemas import ALARM_ID_PATTERN, Alarm, AlarmAck, AlarmPage, SensorAlarms
from ev_storage import CURSOR_PATTERN, AlarmFilter, AlarmId, AlarmReader, InvalidCursor

router = APIRouter(tags=["alarms"], dependencies=[StrictQuery])


async def get_alarm_reader(connection: HTTPConnection) -> AlarmReader:
    reader = get_resources(connection).alarm_reader
    if reader is None:
        raise RuntimeError("the app's lifespan made no alarm reader")
    return reader


AlarmReaderDep = Annotated[AlarmReader, Depends(get_alarm_reader)]
StateQuery = Annotated[
    Literal["active", "cleared"] | None,
    Query(description="Only active or only cleared episodes.", examples=["active"]),
]
SeverityQuery = Annotated[
    Literal["info", "warning", "critical"] | None,
    Query(description="Only episodes of this severity.", examples=["critical"]),
]
TypeQuery = Annotated[
    str | None, Query(description="Only episodes of rules on this type.", examples=["temperature"])
]
RuleQuery = Annotated[
    str | None, Query(description="Only episodes of this rule id.", examples=["motor-hot"])
]


@router.get(
    "/sensor/{sensor_id}/alarms",
    response_model=SensorAlarms,
    responses=error_responses(401, 422, 503),
)
async def sensor_alarms(
    sensor_id: SensorIdPath,
    alarms: AlarmReaderDep,
    state: StateQuery = None,
    severity: SeverityQuery = None,
    sensor_type: TypeQuery = None,
    rule: RuleQuery = None,
) -> SensorAlarms:
    """The sensor's alarm episodes within the retention window, newest first (by when the
    condition began, in measurement time); an empty list for a sensor without any."""
    items = [
        alarm
        for alarm in await alarms.sensor_alarms(sensor_id)
        if (state is None or alarm.state == state)
        and (severity is None or alarm.severity == severity)
        and (sensor_type is None or alarm.sensor_type == sensor_type)
        and (rule is None or alarm.rule_id == rule)
    ]
    return SensorAlarms(sensor_id=sensor_id, items=items)


@router.get("/alarms", response_model=AlarmPage, responses=error_responses(401, 422, 503))
async def fleet_alarms(
    alarms: AlarmReaderDep,
    state: StateQuery = None,
    severity: SeverityQuery = None,
    prefix: Annotated[
        str,
        Query(
            description="Only sensors whose id starts with this.",
            pattern=r"^[A-Za-z0-9_.-]{0,64}$",
            examples=["bus_"],
        ),
    ] = "",
    sensor_type: TypeQuery = None,
    rule: RuleQuery = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Items per page (at most 1000).", examples=[100])
    ] = 100,
    cursor: Annotated[
        str | None,
        Query(
            description="The next_cursor of the previous page, unchanged.",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None,
) -> AlarmPage:
    """The fleet's alarm episodes within the retention window, newest first (by when the
    condition began, in measurement time), cursor-paged."""
    where = AlarmFilter(state, severity, prefix, sensor_type, rule)
    try:
        items, next_cursor = await alarms.fleet_alarms(where, limit=limit, cursor=cursor)
    except InvalidCursor as exc:
        raise invalid_query("cursor", str(exc), cursor) from None
    return AlarmPage(items=items, next_cursor=next_cursor)


@router.post(
    "/alarms/{alarm_id}/ack",
    response_model=Alarm,
    responses=error_responses(401, 404, 422, 503),
)
async def acknowledge(
    alarm_id: Annotated[
        str,
        Path(
            description="The alarm's `alarm_id`: `<sensor id>~<sensor type>~<rule id>~<began ms>`.",
            pattern=ALARM_ID_PATTERN,
            examples=["ev_001~temperature~motor-hot~1706788830000"],
        ),
    ],
    ack: Annotated[AlarmAck, Body()],
    alarms: AlarmReaderDep,
) -> Alarm:
    """Acknowledge an alarm: who, and when (server time). The first acknowledgement is kept (a
    repeated one returns it); an acknowledged alarm stays active until it clears."""
    found = await alarms.acknowledge(AlarmId.parse(alarm_id), ack.by)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alarm {alarm_id!r}")
    return found

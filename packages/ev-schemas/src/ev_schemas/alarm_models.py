"""Alarm episodes as the API shows them (docs/alarms.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ev_schemas.reading import SensorId, UtcTimestamp

#: An alarm's id: ``<sensor id>~<sensor type>~<rule id>~<began ms>`` (URL-safe as is).
ALARM_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}~[a-z0-9_]{1,64}~[a-z0-9][a-z0-9_.-]{0,63}~-?[0-9]{1,16}$"

_ALARM: dict[str, JsonValue] = {
    "alarm_id": "ev_001~temperature~motor-hot~1706788830000",
    "sensor_id": "ev_001",
    "sensor_type": "temperature",
    "rule_id": "motor-hot",
    "severity": "critical",
    "state": "cleared",
    "began": "2024-02-01T12:00:30Z",
    "raised": "2024-02-01T12:01:30Z",
    "cleared": "2024-02-01T12:03:00Z",
    "raised_at": "2024-02-01T12:01:30.412Z",
    "cleared_at": "2024-02-01T12:03:00.388Z",
    "acked_by": "ops-oncall",
    "acked_at": "2024-02-01T12:02:10.001Z",
}


class Alarm(BaseModel):
    """One alarm episode. ``began``, ``raised`` and ``cleared`` are measurement times (of the
    readings that began the condition, raised the alarm and cleared it); ``raised_at`` and
    ``cleared_at`` are when this system processed those readings."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ALARM]})

    alarm_id: str = Field(pattern=ALARM_ID_PATTERN)
    sensor_id: SensorId
    sensor_type: str
    rule_id: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["active", "cleared"]
    began: UtcTimestamp
    raised: UtcTimestamp
    cleared: UtcTimestamp | None = None
    raised_at: UtcTimestamp
    cleared_at: UtcTimestamp | None = None
    acked_by: str | None = None
    acked_at: UtcTimestamp | None = None


class SensorAlarms(BaseModel):
    """A sensor's alarm episodes, newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"sensor_id": "ev_001", "items": [_ALARM]}]}
    )

    sensor_id: SensorId
    items: list[Alarm]


class AlarmPage(BaseModel):
    """A page of the fleet's alarms, newest first; pass ``next_cursor`` back to continue."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_ALARM], "next_cursor": None}]}
    )

    items: list[Alarm]
    next_cursor: str | None = Field(
        description="Opaque; null on the last page.",
        examples=[
            None,
            "MTcwNjc4ODgzMDAwMDpldl8wMDF-dGVtcGVyYXR1cmV-bW90b3ItaG90fjE3MDY3ODg4MzAwMDA",
        ],
    )


class AlarmAck(BaseModel):
    """Who acknowledges an alarm (it stays active until it clears)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"by": "ops-oncall"}]}
    )

    by: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")


class AlarmEvent(BaseModel):
    """An alarm transition pushed to live clients: ``raised``, ``cleared``, ``revised`` (a late
    reading changed the episode's times) or ``retracted`` (a late reading showed it never
    happened), at ``at`` (server time), with the episode as it stands after it (no
    acknowledgement: ``GET /sensor/{id}/alarms`` has those)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event": "alarm",
                    "kind": "cleared",
                    "at": "2024-02-01T12:03:00.388Z",
                    "alarm": {**_ALARM, "acked_by": None, "acked_at": None},
                }
            ]
        }
    )

    event: Literal["alarm"] = "alarm"
    kind: Literal["raised", "cleared", "revised", "retracted"]
    at: UtcTimestamp
    alarm: Alarm

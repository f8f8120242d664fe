"""The reading of the contract, as published and as stored and returned."""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from ev_schemas.timestamps import format_epoch_ms, format_timestamp, from_epoch_ms, normalise

SENSOR_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
SENSOR_ID_RULE = "1-64 characters of letters, digits, '_', '-' and '.'"
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.\-/ %]*")


@lru_cache(maxsize=4096)  # sensor ids, types and units repeat
def _json_string(text: str) -> str:
    """``text`` as a JSON string, spelt as pydantic spells it (UTF-8, not ``\\u`` escapes)."""
    if _PLAIN_TEXT.fullmatch(text):
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def check_sensor_id(value: str) -> str:
    """``value`` if it is a valid sensor id, else :class:`ValueError` naming the rule."""
    if not SENSOR_ID_RE.fullmatch(value):
        raise ValueError(f"sensor_id must be {SENSOR_ID_RULE}")
    return value


SensorId = Annotated[
    str,
    AfterValidator(check_sensor_id),
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description=f"Vehicle sensor identifier: {SENSOR_ID_RULE}.",
        examples=["ev_001"],
    ),
]

UtcTimestamp = Annotated[
    datetime,
    AfterValidator(normalise),
    PlainSerializer(format_timestamp, return_type=str, when_used="always"),
    Field(
        description="Time of measurement, RFC 3339 in UTC with millisecond precision.",
        examples=["2024-02-01T12:00:00Z"],
    ),
]

_EXAMPLE: dict[str, Any] = {
    "sensor_id": "ev_001",
    "sensor_type": "battery",
    "timestamp": "2024-02-01T12:00:00Z",
    "value": 85.5,
    "unit": "percentage",
}


class Reading(BaseModel):
    """A validated reading in its canonical form: UTC timestamp, canonical unit."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_EXAMPLE]})

    sensor_id: SensorId
    sensor_type: str = Field(description="A configured sensor type.", examples=["battery"])
    timestamp: UtcTimestamp
    value: float = Field(allow_inf_nan=False, description="Value in the canonical unit.")
    unit: str = Field(description="The canonical unit of the sensor type.", examples=["percentage"])

    @classmethod
    def trusted(
        cls, sensor_id: str, sensor_type: str, timestamp: datetime, value: float, unit: str
    ) -> Reading:
        """A reading from values already checked (the validator's output, stored data).

        What ``model_construct`` makes of these five fields, without its generic loop over
        fields and aliases: this runs once per reading ingested or served from history.
        """
        reading = cls.__new__(cls)
        _set_attribute(
            reading,
            "__dict__",
            {
                "sensor_id": sensor_id,
                "sensor_type": sensor_type,
                "timestamp": timestamp,
                "value": value,
                "unit": unit,
            },
        )
        _set_attribute(reading, "__pydantic_fields_set__", set(_FIELD_NAMES))
        _set_attribute(reading, "__pydantic_extra__", None)
        _set_attribute(reading, "__pydantic_private__", None)
        return reading

    def to_json(self) -> bytes:
        """Compact canonical JSON, the form stored in Redis and returned by the API.

        The same bytes as ``model_dump_json()``, built directly: this runs once per stored
        reading, and pydantic's serializer costs several times more.
        """
        value = _value_json(self.value)
        if value is None:
            return self.model_dump_json().encode()
        return _reading_json(
            self.sensor_id, self.sensor_type, format_timestamp(self.timestamp), value, self.unit
        ).encode()


def stored_reading_json(sensor_id: str, sensor_type: str, ms: int, value: float, unit: str) -> str:
    """``Reading.to_json()`` of a stored reading (its time in epoch ms), without the Reading."""
    text = _value_json(value)
    if text is None:
        reading = Reading.trusted(sensor_id, sensor_type, from_epoch_ms(ms), value, unit)
        return reading.model_dump_json()
    return _reading_json(sensor_id, sensor_type, format_epoch_ms(ms), text, unit)


def _value_json(value: float) -> str | None:
    """A float as pydantic spells it in JSON, or None where repr's spelling differs from
    pydantic's (exponents, inf, nan): ask pydantic then."""
    text = repr(float(value))
    return None if "e" in text or "n" in text else text


def _reading_json(
    sensor_id: str, sensor_type: str, timestamp_text: str, value_text: str, unit: str
) -> str:
    return (
        f'{{"sensor_id":{_json_string(sensor_id)},'
        f'"sensor_type":{_json_string(sensor_type)},'
        f'"timestamp":"{timestamp_text}",'
        f'"value":{value_text},"unit":{_json_string(unit)}}}'
    )


_FIELD_NAMES = frozenset(Reading.model_fields)
_set_attribute = object.__setattr__


class PublishedReading(BaseModel):
    """The body a publisher sends: strict JSON types, unknown fields ignored."""

    model_config = ConfigDict(
        strict=True, extra="ignore", json_schema_extra={"examples": [_EXAMPLE]}
    )

    sensor_id: str = Field(description=f"{SENSOR_ID_RULE}.", examples=["ev_001"])
    sensor_type: str = Field(description="Must equal the type in the routing key.")
    timestamp: AwareDatetime = Field(
        description="RFC 3339 with a time zone offset or Z; naive times are rejected.",
        examples=["2024-02-01T12:00:00Z"],
    )
    value: float = Field(allow_inf_nan=False, description="A finite JSON number.")
    unit: str = Field(description="The canonical unit of the type or a known alternative.")

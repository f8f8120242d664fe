"""Path and query parameters shared by routes, with readable validation messages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

from fastapi import Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from ev_schemas import Catalogue, check_sensor_id

SensorIdPath = Annotated[
    str,
    # check_sensor_id states the rule in words; a bare regex error would only quote the pattern.
    AfterValidator(check_sensor_id),
    Path(
        description="Vehicle sensor identifier: 1-64 letters, digits, '_', '-' or '.'.",
        examples=["ev_001"],
        json_schema_extra={"pattern": r"^[A-Za-z0-9_.\-]{1,64}$"},
    ),
]

SensorTypePath = Annotated[
    str,
    Path(description="A configured sensor type.", examples=["battery"]),
]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
# An unencoded '+' in a query string arrives as a space: "12:00:00 01:00" meant "12:00:00+01:00".
_PLUS_AS_SPACE = re.compile(r"(:\d{2}(?:\.\d+)?) (\d{2}:\d{2})$")


def rfc3339(value: object) -> object:
    """Accept only RFC 3339 date-times with a zone (no bare dates, epoch numbers or naive times)."""
    if isinstance(value, str):
        value = _PLUS_AS_SPACE.sub(r"\1+\2", value.strip())
        if not _RFC3339.fullmatch(value):
            raise ValueError(
                "must be an RFC 3339 date-time with a time zone, e.g. 2024-02-01T12:00:00Z"
            )
    return value


TimeQuery = Annotated[
    AwareDatetime | None,
    BeforeValidator(rfc3339),
    Query(
        description="RFC 3339 date-time with a zone, e.g. `2024-02-01T12:00:00Z`.",
        examples=["2024-02-01T12:00:00Z"],
    ),
]


TypesQuery = Annotated[
    list[str] | None,
    Query(
        description="Only these types: repeat the parameter or separate types with commas. "
        "Default: every configured type.",
        examples=["battery,speed"],
    ),
]


def invalid_query(
    field: str, message: str, value: object, kind: str = "value_error"
) -> RequestValidationError:
    """A 422 in FastAPI's own shape, for checks that depend on settings or on each other."""
    return RequestValidationError(
        [{"type": kind, "loc": ("query", field), "msg": message, "input": value}]
    )


def parse_type_filter(values: Iterable[str] | None, catalogue: Catalogue) -> tuple[str, ...] | None:
    """Types named by repeated and/or comma-separated values, in order, without repeats.

    None when no filter was given; :class:`ValueError` naming the configured types when one is
    unknown, or when the filter names no type at all.
    """
    names = split_list(values)
    if names is None:
        return None
    if not names:
        raise ValueError(f"name at least one sensor type; configured: {', '.join(catalogue)}")
    unknown = [name for name in names if name not in catalogue]
    if unknown:
        raise ValueError(
            f"unknown sensor type(s) {', '.join(map(repr, unknown))}; "
            f"configured: {', '.join(catalogue)}"
        )
    return names


def split_list(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """The names of a repeated and/or comma-separated parameter, in order, without repeats
    (None when it is absent, empty when it names nothing)."""
    if values is None:
        return None
    return tuple(
        dict.fromkeys(part.strip() for value in values for part in value.split(",") if part.strip())
    )


def parse_flag(name: str, value: str | None) -> bool:
    """A switch: absent, ``false`` or ``0`` is off, ``true`` or ``1`` on; :class:`ValueError`
    otherwise (checked by hand where FastAPI's own check would fail a WebSocket handshake)."""
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"{name} must be true or false, not {value[:40]!r}")

"""Durations as rule files spell them: ``"60s"``, ``"5m"``, ``"2h"``, ``"1500ms"`` or seconds.

Stored as :class:`~datetime.timedelta` of whole milliseconds (readings are timed to the ms), and
written back in the largest unit that keeps them exact, so a rule set has one canonical form.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
#: Longer than any retention or hold time makes sense for, and far inside timedelta's range.
MAX_DURATION_MS = 366 * 86_400_000
DURATION_RULE = (
    "a duration: a number of seconds, or a number with a unit ms, s, m, h or d "
    "(e.g. '60s', '5m', '2h'), in whole milliseconds"
)


def parse_duration(value: object) -> timedelta:
    """``value`` (``"5m"``, ``90``, ``1.5``, a timedelta) as a timedelta of whole milliseconds;
    :class:`ValueError` naming the rule otherwise."""
    if isinstance(value, timedelta):
        ms = Decimal(value // timedelta(microseconds=1)) / 1000
    elif isinstance(value, bool):
        raise ValueError(f"must be {DURATION_RULE}, not a boolean")
    elif isinstance(value, int | float):
        try:
            ms = Decimal(str(value)) * 1000
        except InvalidOperation:
            raise ValueError(f"must be {DURATION_RULE}") from None
        if not ms.is_finite():
            raise ValueError(f"must be {DURATION_RULE}, not {value}")
    elif isinstance(value, str):
        match = _DURATION_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"must be {DURATION_RULE}, not {value!r}")
        ms = Decimal(value.strip()[: match.start(2)]) * _UNIT_MS[match.group(2)]
    else:
        raise ValueError(f"must be {DURATION_RULE}")
    if ms < 0:
        raise ValueError(f"must not be negative ({value})")
    if ms != ms.to_integral_value():
        raise ValueError(f"must be whole milliseconds ({value})")
    if ms > MAX_DURATION_MS:
        raise ValueError(f"must be at most 366 days ({value})")
    return timedelta(milliseconds=int(ms))


def format_duration(value: timedelta) -> str:
    """The canonical spelling: the largest unit that states ``value`` exactly (``"90s"``)."""
    ms = value // timedelta(milliseconds=1)
    for unit, size in _UNIT_MS.items():
        if ms % size == 0 and (ms or unit == "s"):
            return f"{ms // size}{unit}"
    raise AssertionError("unreachable: every whole ms is a multiple of 1 ms")


def duration_ms(value: timedelta) -> int:
    """``value`` in whole milliseconds."""
    return value // timedelta(milliseconds=1)


_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN},
        {"type": "number", "minimum": 0},
    ],
    "description": f"{DURATION_RULE[0].upper()}{DURATION_RULE[1:]}.",
    "examples": ["60s", "5m", 90],
}

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_SCHEMA),
]
"""A field holding a duration, read as :func:`parse_duration` reads it, written canonically."""

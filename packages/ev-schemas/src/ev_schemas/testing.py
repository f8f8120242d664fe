"""Oracles for tests of code built on ev-schemas: ``reference()``, a straightforward aggregation
of a plain list of readings, to check the real one (ev-schemas' fold, ev-storage's streamed
aggregate, the API's route) against, and ``fleet_reference()``, the same over the readings of
many sensors taken together (the fleet-wide aggregate). Not used by the package itself.

Independent of ``ev_schemas.intervals`` on purpose: buckets come from datetime arithmetic on
local dates (days, weeks) or integer division (shorter intervals), values are summed with
``math.fsum`` over the whole bucket at once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _first_day(unit: str) -> date:
    return date(1969, 12, 29) if unit == "w" else date(1970, 1, 1)


def bucket_key(ms: int, count: int, unit: str, zone: ZoneInfo) -> int:
    if unit in UNIT_MS:
        return ms // (count * UNIT_MS[unit])
    local = (EPOCH + timedelta(milliseconds=ms)).astimezone(zone).date()
    days = count * (7 if unit == "w" else 1)
    return (local - _first_day(unit)).days // days


def bucket_start(key: int, count: int, unit: str, zone: ZoneInfo) -> int:
    if unit in UNIT_MS:
        return key * count * UNIT_MS[unit]
    days = count * (7 if unit == "w" else 1)
    day = _first_day(unit) + timedelta(days=key * days)
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    return (midnight - EPOCH) // timedelta(milliseconds=1)


def reference(
    readings: list[tuple[int, float]],
    start_ms: int,
    end_ms: int,
    interval: tuple[int, str],
    zone: str,
    fill: str,
) -> list[dict[str, float | int | None]]:
    """Buckets as dicts (``start``, ``end`` in ms and all seven aggregates)."""
    count, unit = interval
    tz = ZoneInfo(zone)
    if end_ms <= start_ms:
        return []
    grouped: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for ms, value in readings:
        if start_ms <= ms < end_ms:
            grouped[bucket_key(ms, count, unit, tz)].append((ms, value))
    first_key = bucket_key(start_ms, count, unit, tz)
    last_key = bucket_key(end_ms - 1, count, unit, tz)
    out: list[dict[str, float | int | None]] = []
    previous: dict[str, float | int | None] | None = None
    for key in range(first_key, last_key + 1):
        bounds = {
            "start": bucket_start(key, count, unit, tz),
            "end": bucket_start(key + 1, count, unit, tz),
        }
        items = sorted(grouped.get(key, []))
        empty = dict.fromkeys(("avg", "min", "max", "sum", "first", "last"))
        if items:
            values = [value for _, value in items]
            total = math.fsum(values)
            previous = {
                "count": len(values),
                "avg": total / len(values),
                "min": min(values, key=_signed),
                "max": max(values, key=_signed),
                "sum": total,
                "first": items[0][1],
                "last": items[-1][1],
            }
            out.append({**bounds, **previous})
        elif fill == "null" or (fill == "previous" and previous is None):
            out.append({**bounds, "count": 0, **empty})
        elif fill == "previous":
            assert previous is not None
            out.append({**bounds, **previous, "count": 0})
    return out


def fleet_reference(
    series: Mapping[str, Sequence[tuple[int, float]]],
    start_ms: int,
    end_ms: int,
    interval: tuple[int, str],
    zone: str,
    fill: str,
) -> list[dict[str, float | int | None]]:
    """:func:`reference` of the readings of every series taken together, first and last by
    (timestamp, series) (the fleet-wide aggregate's order)."""
    count, unit = interval
    tz = ZoneInfo(zone)
    if end_ms <= start_ms:
        return []
    grouped: dict[int, list[tuple[int, str, float]]] = defaultdict(list)
    for name, readings in series.items():
        for ms, value in readings:
            if start_ms <= ms < end_ms:
                grouped[bucket_key(ms, count, unit, tz)].append((ms, name, value))
    out: list[dict[str, float | int | None]] = []
    previous: dict[str, float | int | None] | None = None
    first_key = bucket_key(start_ms, count, unit, tz)
    last_key = bucket_key(end_ms - 1, count, unit, tz)
    for key in range(first_key, last_key + 1):
        bounds = {
            "start": bucket_start(key, count, unit, tz),
            "end": bucket_start(key + 1, count, unit, tz),
        }
        items = sorted(grouped.get(key, []), key=lambda item: item[:2])
        if items:
            values = [value for _, _, value in items]
            total = math.fsum(values)
            previous = {
                "count": len(values),
                "avg": total / len(values),
                "min": min(values, key=_signed),
                "max": max(values, key=_signed),
                "sum": total,
                "first": items[0][2],
                "last": items[-1][2],
            }
            out.append({**bounds, **previous})
        elif fill == "null" or (fill == "previous" and previous is None):
            empty = dict.fromkeys(("avg", "min", "max", "sum", "first", "last"))
            out.append({**bounds, "count": 0, **empty})
        elif fill == "previous":
            assert previous is not None
            out.append({**bounds, **previous, "count": 0})
    return out


def _signed(value: float) -> tuple[float, float]:
    """Order of min and max: of two zeros, -0.0 is the smaller (IEEE 754), whatever their order."""
    return value, math.copysign(1.0, value)

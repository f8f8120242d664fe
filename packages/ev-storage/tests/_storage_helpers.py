"""Helpers of ev-storage's tests: reading builders and a comparable snapshot of stored state.

(Not named conftest: test modules import it, and the repository root has a conftest too.)
"""

from __future__ import annotations

import itertools
import math
import re
import struct
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import redis

from ev_schemas import Reading, default_catalogue
from ev_storage import KeyLayout

CATALOGUE = default_catalogue()
T0 = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
T0_MS = 1706788800000
SENSOR = "ev_001"


def make_reading(
    at: datetime | int,
    value: float,
    sensor_type: str = "battery",
    sensor_id: str = SENSOR,
) -> Reading:
    """A canonical reading; ``at`` is a datetime or milliseconds after :data:`T0`."""
    timestamp = at if isinstance(at, datetime) else T0 + timedelta(milliseconds=at)
    return Reading(
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        timestamp=timestamp,
        value=value,
        unit=CATALOGUE[sensor_type].unit,
    )


def history_rows(client: redis.Redis, key: str) -> list[tuple[int, float]]:
    """(ms, value) of every reading in a history hash, checking the layout on the way.

    Decoded here independently of ev_storage: 12-byte records (big-endian uint32 offset, double)
    sorted within each non-empty bucket field, and a meta field ``bucket_ms:newest:first bucket``.
    """
    fields: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    if not fields:
        return []
    bucket_ms, newest, first = (int(part) for part in fields.pop(b"meta").split(b":"))
    rows: list[tuple[int, float]] = []
    numbers = sorted(int(field) for field in fields if field.lstrip(b"-").isdigit())
    assert all(field.lstrip(b"-").isdigit() or ROLLUP_FIELD.fullmatch(field) for field in fields)
    assert numbers[0] == first, (numbers[0], first)
    for number in numbers:
        data = fields[str(number).encode()]
        assert data, number
        assert len(data) % 12 == 0, (number, data)
        records = [
            (number * bucket_ms + off, value) for off, value in struct.iter_unpack(">Id", data)
        ]
        assert all(0 <= ms - number * bucket_ms < bucket_ms for ms, _ in records)
        assert records == sorted(records)
        assert len({ms for ms, _ in records}) == len(records)
        rows += records
    assert rows[-1][0] == newest, (rows[-1], newest)
    return rows


ROLLUP_FIELD = re.compile(rb"rollups|[mq]-?[0-9]+")


def history_fields(client: redis.Redis, key: str) -> dict[bytes, bytes]:
    """A history hash's readings and meta, without its rollups (see :func:`check_rollups`)."""
    fields: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    return {name: data for name, data in fields.items() if not ROLLUP_FIELD.fullmatch(name)}


ROLLUP_MS = {b"m": 60_000, b"q": 900_000}


def check_rollups(client: redis.Redis, key: str) -> int | None:
    """Check that a history's rollup records aggregate exactly the readings it holds, decoded
    here independently of ev_storage; the rollups' start (None when the history keeps none).

    Layout: field ``rollups`` = S (a multiple of 15 min); ``m<n>``/``q<n>`` = count (uint32),
    min, max, first (uint32 offset, double), last (uint32 offset, double), then the sum's
    partials (doubles) whose exact sum is the exact sum of the values.
    """
    fields: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
    rows = history_rows(client, key)
    raw_since = fields.get(b"rollups")
    records = {
        f: v for f, v in fields.items() if f[:1] in ROLLUP_MS and f[1:].lstrip(b"-").isdigit()
    }
    if raw_since is None:
        return None
    since = int(raw_since)
    assert since % ROLLUP_MS[b"q"] == 0, since
    expected: dict[bytes, list[tuple[int, float]]] = {}
    for ms, value in rows:
        if ms >= since:
            for kind, size in ROLLUP_MS.items():
                expected.setdefault(kind + str(ms // size).encode(), []).append((ms, value))
    assert sorted(records) == sorted(expected), (sorted(records), sorted(expected))
    for field, readings in expected.items():
        size = ROLLUP_MS[field[:1]]
        base = int(field[1:]) * size
        head = struct.unpack_from(">IddIdId", records[field])
        partials = struct.unpack(f">{(len(records[field]) - 44) // 8}d", records[field][44:])
        values = [value for _, value in readings]
        assert head == (
            len(readings),
            min(values, key=lambda v: (v, math.copysign(1.0, v))),  # IEEE 754: -0.0 < 0.0
            max(values, key=lambda v: (v, math.copysign(1.0, v))),
            readings[0][0] - base,
            readings[0][1],
            readings[-1][0] - base,
            readings[-1][1],
        ), (field, head)
        assert sum(map(Fraction, partials)) == sum(map(Fraction, values)), field
        assert all(partials), partials
        assert all(abs(a) < abs(b) for a, b in itertools.pairwise(partials)), partials
    return since


def snapshot(
    client: redis.Redis, keys: KeyLayout, sensor_id: str = SENSOR, types: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Everything the writer stores for a sensor, comparable with ``==`` (TTLs left out).

    Histories are compared byte for byte (every field of the hash), not only as readings.
    """
    types = types or tuple(CATALOGUE)
    state: dict[str, Any] = {"summary": client.hgetall(keys.summary(sensor_id))}
    for sensor_type in types:
        state[f"{sensor_type}:latest"] = client.get(keys.latest(sensor_id, sensor_type))
        state[f"{sensor_type}:history"] = client.hgetall(keys.history(sensor_id, sensor_type))
    return state

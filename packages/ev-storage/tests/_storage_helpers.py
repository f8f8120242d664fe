"""Helpers of ev-storage's tests: reading builders and a comparable snapshot of stored state.

(Not named conftest: test modules import it, and the repository root has a conftest too.)
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
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
    numbers = sorted(int(field) for field in fields)
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

"""Helpers of ev-storage's tests: reading builders and a comparable snapshot of stored state.

(Not named conftest: test modules import it, and the repository root has a conftest too.)
"""

from __future__ import annotations

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


def snapshot(
    client: redis.Redis, keys: KeyLayout, sensor_id: str = SENSOR, types: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Everything the writer stores for a sensor, comparable with ``==`` (TTLs left out)."""
    types = types or tuple(CATALOGUE)
    state: dict[str, Any] = {"summary": client.hgetall(keys.summary(sensor_id))}
    for sensor_type in types:
        state[f"{sensor_type}:latest"] = client.get(keys.latest(sensor_id, sensor_type))
        state[f"{sensor_type}:history"] = client.zrange(
            keys.history(sensor_id, sensor_type), 0, -1, withscores=True
        )
    return state

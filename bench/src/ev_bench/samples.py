"""Sampling readings for latency: which sensors to watch, and matching publishes to arrivals.

A reading is identified by (sensor id, type, instant in ms): the body a vehicle publishes and the
canonical JSON the pipeline pushes may spell the timestamp differently, never the instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

VEHICLES = 50
#: Watch enough sensors for this many samples a second, at most MAX_WATCHED: enough for a p99,
#: few enough that the API's WebSocket fan-out stays a small part of its load.
SAMPLES_PER_S = 400
MAX_WATCHED = 10
#: How long to wait for the last pushes after the publisher finished.
SETTLE_S = 10.0

Key = tuple[str, str, int]


def reading_key(sensor_id: str, sensor_type: str, timestamp: str) -> Key:
    """A reading's identity; timestamps compared as instants, whatever their spelling."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return sensor_id, sensor_type, round(moment.timestamp() * 1000)


def watched_count(per_s: float, vehicles: int) -> int:
    """How many sensors to watch at ``per_s`` readings a second over ``vehicles`` sensors."""
    per_sensor = per_s / vehicles
    return max(1, min(MAX_WATCHED, vehicles, round(SAMPLES_PER_S / per_sensor)))


def latencies_ms(
    records: Sequence[Sequence[object]], arrivals: dict[Key, int]
) -> tuple[list[float], int]:
    """(latency of each published sample that arrived, how many never arrived)."""
    found: list[float] = []
    missing = 0
    for sensor_id, sensor_type, timestamp, published_ns in records:
        key = reading_key(str(sensor_id), str(sensor_type), str(timestamp))
        arrived = arrivals.get(key)
        if arrived is None:
            missing += 1
        else:
            found.append((arrived - int(str(published_ns))) / 1e6)
    return found, missing

"""Stage 5: Redis memory per stored reading, through the product's write path.

One sensor's battery history of ``count`` readings at 1 Hz (realistic values with one or two
decimals) is written twice: in order, and as a consumer under faults would deliver it (locally
shuffled, some readings late by up to an hour, 2% delivered twice). Both histories must be
identical: the compact layout must stay exact whatever the delivery order. ``MEMORY USAGE ...
SAMPLES 0`` (exact, not sampled) of the in-order key gives bytes per reading; a sensor with the
latest reading of every type gives the fixed cost per sensor (latest keys and summary hash).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import redis

from ev_bench.context import RunContext
from ev_bench.errors import BenchError
from ev_schemas import Reading, default_catalogue, utc_now
from ev_storage import KeyLayout, ReadingWriter, StorageSettings

SENSOR = "mem_0001"
FLEET_SENSOR = "mem_0002"
BATCH = 1000
SHUFFLE_WINDOW = 50
LATE_SHARE = 0.005
DUPLICATE_SHARE = 0.02


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    readings: int
    history_bytes: int
    writes_per_s: float  # ReadingWriter.store_many in batches, no broker
    exact: bool  # the disordered, duplicated delivery gave the same history
    latest_bytes: int  # every type's latest key of one sensor
    summary_bytes: int  # that sensor's summary hash
    types: int

    @property
    def history_bytes_per_reading(self) -> float:
        return self.history_bytes / self.readings

    @property
    def sensor_bytes(self) -> int:
        """Fixed cost of one sensor reporting every type: latest keys and summary."""
        return self.latest_bytes + self.summary_bytes


def history_readings(count: int, seed: int = 1) -> list[Reading]:
    """``count`` battery readings at 1 Hz ending a minute ago, values as vehicles report them."""
    rng = random.Random(seed)
    end = utc_now().replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(seconds=count - 1)
    return [
        Reading(
            sensor_id=SENSOR,
            sensor_type="battery",
            timestamp=start + timedelta(seconds=i),
            value=round(rng.uniform(20, 100), rng.choice((1, 2))),
            unit="percentage",
        )
        for i in range(count)
    ]


def disordered(readings: Sequence[Reading], seed: int = 2) -> list[Reading]:
    """``readings`` as an unlucky consumer sees them: shuffled within small windows, a few
    late by up to an hour, some delivered twice (a redelivery after a lost ack)."""
    rng = random.Random(seed)
    result: list[Reading] = []
    for start in range(0, len(readings), SHUFFLE_WINDOW):
        window = list(readings[start : start + SHUFFLE_WINDOW])
        rng.shuffle(window)
        result.extend(window)
    for _ in range(int(len(result) * LATE_SHARE)):
        index = rng.randrange(len(result))
        late = result.pop(index)
        result.insert(min(len(result), index + rng.randrange(1, 3600)), late)
    for _ in range(int(len(result) * DUPLICATE_SHARE)):
        index = rng.randrange(len(result))
        result.insert(min(len(result), index + rng.randrange(1, 500)), result[index])
    return result


def _write(writer: ReadingWriter, readings: Sequence[Reading]) -> float:
    started = time.perf_counter()
    for start in range(0, len(readings), BATCH):
        writer.store_many(readings[start : start + BATCH])
    return time.perf_counter() - started


def _usage(client: redis.Redis, key: str) -> int:
    used = client.memory_usage(key, samples=0)
    if used is None:
        raise BenchError(f"{key} does not exist")
    return int(used)


def run_memory(ctx: RunContext, *, count: int) -> MemoryFigures:
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        in_order, shuffled = ctx.sandbox.prefix("mem-a"), ctx.sandbox.prefix("mem-b")
        readings = history_readings(count)
        seconds = _write(ReadingWriter(client, StorageSettings(key_prefix=in_order)), readings)
        _write(ReadingWriter(client, StorageSettings(key_prefix=shuffled)), disordered(readings))
        key_a = KeyLayout(in_order).history(SENSOR, "battery")
        key_b = KeyLayout(shuffled).history(SENSOR, "battery")
        exact = client.hgetall(key_a) == client.hgetall(key_b)
        counts = [
            client.hget(KeyLayout(p).summary(SENSOR), "battery:count") for p in (in_order, shuffled)
        ]
        exact = exact and counts == [str(count).encode()] * 2

        catalogue = default_catalogue()
        writer = ReadingWriter(client, StorageSettings(key_prefix=in_order))
        moment = utc_now() - timedelta(minutes=1)
        writer.store_many(
            [
                Reading(
                    sensor_id=FLEET_SENSOR,
                    sensor_type=kind.name,
                    timestamp=moment,
                    value=max(kind.minimum, min(kind.maximum, 12.34)),
                    unit=kind.unit,
                )
                for kind in catalogue.values()
            ]
        )
        layout = KeyLayout(in_order)
        latest = sum(_usage(client, layout.latest(FLEET_SENSOR, name)) for name in catalogue)
        return MemoryFigures(
            readings=count,
            history_bytes=_usage(client, key_a),
            writes_per_s=count / seconds,
            exact=exact,
            latest_bytes=latest,
            summary_bytes=_usage(client, layout.summary(FLEET_SENSOR)),
            types=len(catalogue),
        )
    finally:
        client.close()

"""Measure what storing readings costs (the write figures in docs/storage.md).

Stores 100,000 readings through ReadingWriter.store_many in batches of 500 under a private prefix,
per scenario, and prints a Markdown table: client-side readings/s, the time per script call from
``INFO commandstats`` (``evalsha``), and the server's CPU time per reading from ``INFO cpu``
(everything: parsing, networking, scripts). Both are server-wide, so run it against a Redis
nothing else uses (e.g. ``redis-server --port 6390 --save ''``, the default configuration
otherwise). It deletes its keys afterwards.

    python packages/ev-storage/scripts/measure_write_cost.py [--redis-url redis://127.0.0.1:6379/0]
        [--repeat 3] [--bucket-ms 120000] [ordered ordered-trim fleet replayed]

Scenarios: ``ordered`` one sensor and type at 1 Hz, in order, 7-day retention (no trimming);
``ordered-trim`` the same with 1-hour retention (every write trims); ``fleet`` 200 sensors x 5 types
at 1 Hz, interleaved as a consumer receives them, 2% up to 30 s late and 1% delivered twice;
``replayed`` half of ``ordered``, then all of it again (every second write finds its reading stored:
the duplicate path, which compares the values).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import redis

from ev_schemas import Reading, default_catalogue
from ev_storage import ReadingWriter, StorageSettings

COUNT = 100_000
BATCH = 500
T0 = datetime(2024, 2, 1, tzinfo=UTC)
CATALOGUE = default_catalogue()
FLEET_TYPES = ("battery", "speed", "temperature", "voltage", "power")


def _reading(rng: random.Random, sensor_id: str, sensor_type: str, second: float) -> Reading:
    low, high = (0.0, 100.0) if sensor_type == "battery" else (1.0, 300.0)
    return Reading(
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        timestamp=T0 + timedelta(seconds=second),
        value=round(rng.uniform(low, high), rng.choice((1, 2))),
        unit=CATALOGUE[sensor_type].unit,
    )


def ordered(rng: random.Random) -> list[Reading]:
    return [_reading(rng, "ev_001", "battery", i) for i in range(COUNT)]


def replayed(rng: random.Random) -> list[Reading]:
    first = [_reading(rng, "ev_001", "battery", i) for i in range(COUNT // 2)]
    return first + first


def fleet(rng: random.Random) -> list[Reading]:
    sensors = [f"ev_{n:04d}" for n in range(200)]
    per_series = COUNT // (len(sensors) * len(FLEET_TYPES))
    readings = [
        _reading(rng, sensor_id, sensor_type, second + rng.random() / 2)
        for second in range(per_series)
        for sensor_id in sensors
        for sensor_type in FLEET_TYPES
    ]
    # A few readings arrive late (up to 30 s of the fleet's traffic), a few twice.
    for _ in range(len(readings) // 50):
        source = rng.randrange(len(readings))
        target = min(len(readings) - 1, source + rng.randrange(1, 30 * len(readings) // per_series))
        readings.insert(target, readings.pop(source))
    for _ in range(len(readings) // 100):
        source = rng.randrange(len(readings))
        readings.insert(min(len(readings), source + rng.randrange(1, 5000)), readings[source])
    return readings


SCENARIOS: dict[str, tuple[Callable[[random.Random], list[Reading]], timedelta]] = {
    "ordered": (ordered, timedelta(days=7)),
    "ordered-trim": (ordered, timedelta(hours=1)),
    "fleet": (fleet, timedelta(days=7)),
    "replayed": (replayed, timedelta(days=7)),
}


def _server_stats(client: redis.Redis) -> tuple[int, int, float]:
    """Script calls and their µs so far, and the server's CPU seconds (user + system)."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    cpu = client.info("cpu")
    return (
        int(stats.get("calls", 0)),
        int(stats.get("usec", 0)),
        float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
    )


@dataclasses.dataclass(frozen=True)
class Measurement:
    readings: int
    seconds: float
    script_usec: float  # per script call, from INFO commandstats
    cpu_usec: float  # server CPU per reading, from INFO cpu


def run(client: redis.Redis, readings: list[Reading], settings: StorageSettings) -> Measurement:
    writer = ReadingWriter(client, settings)
    calls_before, usec_before, cpu_before = _server_stats(client)
    started = time.perf_counter()
    try:
        for start in range(0, len(readings), BATCH):
            writer.store_many(readings[start : start + BATCH])
        elapsed = time.perf_counter() - started
        calls_after, usec_after, cpu_after = _server_stats(client)
    finally:
        keys = list(client.scan_iter(match=f"{settings.key_prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    return Measurement(
        readings=len(readings),
        seconds=elapsed,
        script_usec=(usec_after - usec_before) / max(1, calls_after - calls_before),
        cpu_usec=(cpu_after - cpu_before) * 1e6 / len(readings),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--bucket-ms", type=int, help="history bucket (default: the setting's)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per scenario; each column shows its best"
    )
    parser.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    client = redis.Redis.from_url(args.redis_url)
    try:
        print(f"batches of {BATCH}, best of {args.repeat} run(s)")
        print(
            "| scenario | readings | seconds | readings/s | server µs per script call "
            "| server CPU µs per reading |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name in args.scenarios or SCENARIOS:
            build, retention = SCENARIOS[name]
            readings = build(random.Random(name))
            runs = []
            for _ in range(args.repeat):
                settings = StorageSettings(
                    key_prefix=f"evbench:{uuid.uuid4().hex[:8]}:", history_retention=retention
                )
                if args.bucket_ms is not None:
                    bucket = timedelta(milliseconds=args.bucket_ms)
                    settings = dataclasses.replace(settings, history_bucket=bucket)
                runs.append(run(client, readings, settings))
            # Other load on the machine only ever slows a run down: the best is the truest.
            seconds = min(m.seconds for m in runs)
            print(
                f"| {name} | {len(readings):,} | {seconds:.2f} | {len(readings) / seconds:,.0f} "
                f"| {min(m.script_usec for m in runs):.1f} | {min(m.cpu_usec for m in runs):.1f} |",
                flush=True,
            )
    finally:
        client.close()


if __name__ == "__main__":
    main()

"""Measure Redis memory per stored reading (the figures in docs/storage.md).

Writes one sensor's readings at 1 Hz through ReadingWriter under a private prefix, reads
``MEMORY USAGE ... SAMPLES 0`` (exact) of each key, prints a Markdown table, deletes its keys.

    python packages/ev-storage/scripts/measure_memory.py [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import random
import uuid
from datetime import UTC, datetime, timedelta

import redis

from ev_schemas import Reading
from ev_storage import ReadingWriter, StorageSettings

SIZES = (100, 1_000, 10_000, 100_000)
BATCH = 1_000
T0 = datetime(2024, 2, 1, tzinfo=UTC)


def measure(client: redis.Redis, count: int) -> dict[str, int]:
    prefix = f"evmem:{uuid.uuid4().hex[:8]}:"
    writer = ReadingWriter(client, StorageSettings(key_prefix=prefix))
    rng = random.Random(count)
    readings = [
        Reading(
            sensor_id="ev_001",
            sensor_type="battery",
            timestamp=T0 + timedelta(seconds=i),
            # Realistic telemetry: one or two decimals, as vehicles report.
            value=round(rng.uniform(20, 100), rng.choice((1, 2))),
            unit="percentage",
        )
        for i in range(count)
    ]
    keys = writer.keys
    names = {
        "history": keys.history("ev_001", "battery"),
        "latest": keys.latest("ev_001", "battery"),
        "summary": keys.summary("ev_001"),
    }
    try:
        for start in range(0, count, BATCH):
            writer.store_many(readings[start : start + BATCH])
        return {what: int(client.memory_usage(key, samples=0) or 0) for what, key in names.items()}
    finally:
        client.delete(*names.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url)
    try:
        limit = client.config_get("zset-max-listpack-entries")["zset-max-listpack-entries"]
        print(f"zset-max-listpack-entries {limit} (smaller histories are one compact listpack)")
        print("| readings | history bytes | bytes/reading | latest bytes | summary bytes |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for count in SIZES:
            usage = measure(client, count)
            per = usage["history"] / count
            print(
                f"| {count:,} | {usage['history']:,} | {per:.1f} | {usage['latest']} "
                f"| {usage['summary']} |"
            )
    finally:
        client.close()


if __name__ == "__main__":
    main()

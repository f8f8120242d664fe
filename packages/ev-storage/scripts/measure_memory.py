"""Measure Redis memory per stored reading (the figures in docs/storage.md).

Writes one sensor's readings (one type, one every ``--interval-s`` seconds, values with one or two
decimals as vehicles report them) through ReadingWriter under a private prefix, reads
``MEMORY USAGE ... SAMPLES 0`` (exact) of each key, prints a Markdown table, deletes its keys.
Run it against a Redis with the default configuration: the figures assume it.

    python packages/ev-storage/scripts/measure_memory.py [--redis-url redis://127.0.0.1:6379/0]
        [--interval-s 1] [--bucket-ms 60000] [--sizes 100,1000,10000,100000]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import uuid
from datetime import UTC, datetime, timedelta

import redis

from ev_schemas import Reading
from ev_storage import ReadingWriter, StorageSettings

SIZES = (100, 1_000, 10_000, 100_000)
BATCH = 1_000
T0 = datetime(2024, 2, 1, tzinfo=UTC)


def measure(
    client: redis.Redis, count: int, interval: timedelta, bucket: timedelta | None
) -> dict[str, int]:
    prefix = f"evmem:{uuid.uuid4().hex[:8]}:"
    # The whole series stays within the retention window: nothing is trimmed.
    settings = StorageSettings(
        key_prefix=prefix, history_retention=interval * count + T0.resolution
    )
    if bucket is not None:
        settings = dataclasses.replace(settings, history_bucket=bucket)
    writer = ReadingWriter(client, settings)
    rng = random.Random(count)
    readings = [
        Reading(
            sensor_id="ev_001",
            sensor_type="battery",
            timestamp=T0 + interval * i,
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
    parser.add_argument("--interval-s", type=float, default=1.0, help="between readings")
    parser.add_argument("--bucket-ms", type=int, help="history bucket (default: the setting's)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="readings per run")
    args = parser.parse_args()
    interval = timedelta(seconds=args.interval_s)
    bucket = None if args.bucket_ms is None else timedelta(milliseconds=args.bucket_ms)
    sizes = [int(size) for size in args.sizes.split(",")]
    client = redis.Redis.from_url(args.redis_url)
    try:
        config = client.config_get("hash-max-listpack-*")
        print(", ".join(f"{name} {value}" for name, value in sorted(config.items())))
        bucket_ms = (bucket or StorageSettings().history_bucket) // timedelta(milliseconds=1)
        print(f"one reading every {args.interval_s:g} s, history bucket {bucket_ms} ms")
        print("| readings | history bytes | bytes/reading | latest bytes | summary bytes |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for count in sizes:
            usage = measure(client, count, interval, bucket)
            per = usage["history"] / count
            print(
                f"| {count:,} | {usage['history']:,} | {per:.1f} | {usage['latest']} "
                f"| {usage['summary']} |"
            )
    finally:
        client.close()


if __name__ == "__main__":
    main()

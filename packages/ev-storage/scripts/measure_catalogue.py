"""What the fleet catalogue costs: index memory per sensor and type, server and client time per
indexed reading, and the time of a page and a count (docs/storage.md, "The fleet catalogue").

Run it against a private Redis (it writes under a fresh prefix and deletes it at the end):

    redis-server --port 6391 --save '' --appendonly no &
    python packages/ev-storage/scripts/measure_catalogue.py --redis-url redis://127.0.0.1:6391/0
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import redis
import redis.asyncio

from ev_schemas import Reading, default_catalogue
from ev_storage import CatalogueFilter, CatalogueReader, IndexEntry, ReadingWriter, StorageSettings

CATALOGUE = default_catalogue()
TYPES = ["battery", "speed", "temperature", "voltage", "current", "power"]
T0_MS = 1_706_788_800_000


def _cpu_us(client: redis.Redis) -> float:
    info = client.info("cpu")
    return (float(info["used_cpu_sys"]) + float(info["used_cpu_user"])) * 1e6


def memory(client: redis.Redis, prefix: str, sensors: int, types: int, shards: int) -> None:
    settings = StorageSettings(key_prefix=prefix, catalogue_shards=shards)
    index = ReadingWriter(client, settings).catalogue
    expires = int(time.time() * 1000) + 86_400_000
    batch: list[IndexEntry] = []
    for n in range(sensors):
        for k in range(types):
            batch.append(IndexEntry(f"ev_{n:06d}", TYPES[k], T0_MS + n * 10 + k, expires))
        if len(batch) >= 600:
            index.update(batch)
            batch = []
    index.update(batch)
    total = 0
    keys = 0
    for key in client.scan_iter(match=f"{prefix}catalogue:*", count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
        keys += 1
    print(
        f"memory: {sensors} sensors x {types} types over {shards} shards: {total:,} B in {keys} "
        f"keys = {total / (sensors * types):.1f} B per sensor and type "
        f"({total / sensors:.0f} B per sensor)"
    )


def write_cost(client: redis.Redis, prefix: str, sensors: int, batches: int) -> None:
    """store_many of fleet batches (500 readings: 50 sensors x 10 types) with and without the
    catalogue's update; server CPU from INFO, client time from the wall clock."""
    types = list(CATALOGUE)[:10]
    results = {}
    for label in ("without", "with", "without ", "with "):
        settings = StorageSettings(key_prefix=f"{prefix}{uuid.uuid4().hex[:6]}:")
        writer = ReadingWriter(client, settings)
        if label.strip() == "without":
            writer.catalogue.update = lambda entries: None  # type: ignore[method-assign]
        start = datetime(2024, 2, 1, tzinfo=UTC)
        cpu0, wall0, count = _cpu_us(client), time.perf_counter(), 0
        for b in range(batches):
            readings = [
                Reading.trusted(
                    f"ev_{(b * 50 + s) % sensors:06d}",
                    t,
                    start + timedelta(seconds=b),
                    1.0,
                    CATALOGUE[t].unit,
                )
                for s in range(50)
                for t in types
            ]
            writer.store_many(readings)
            count += len(readings)
        wall, cpu = time.perf_counter() - wall0, _cpu_us(client) - cpu0
        results.setdefault(label.strip(), []).append((wall / count * 1e6, cpu / count))
    for label, runs in results.items():
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"write {label} catalogue: {wall:.1f} us per reading (client wall), "
              f"{cpu:.1f} us server CPU per reading")  # fmt: skip


async def read_latency(url: str, prefix: str, shards: int, rounds: int) -> None:
    client = redis.asyncio.Redis.from_url(url)
    reader = CatalogueReader(client, StorageSettings(key_prefix=prefix, catalogue_shards=shards),
                             CATALOGUE)  # fmt: skip
    cases = {
        "page of 100 by id": lambda: reader.page(CatalogueFilter(), limit=100),
        "page of 100 by last seen": lambda: reader.page(CatalogueFilter(), order="last_seen"),
        "page of 100, prefix + type": lambda: reader.page(
            CatalogueFilter(prefix="ev_01", sensor_type="speed"), limit=100
        ),
        "count": lambda: reader.count(CatalogueFilter()),
        "count prefix": lambda: reader.count(CatalogueFilter(prefix="ev_01")),
        "count type + seen_after": lambda: reader.count(
            CatalogueFilter(sensor_type="speed", seen_after=datetime(2024, 2, 1, 12, 5, tzinfo=UTC))
        ),
    }
    for name, call in cases.items():
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            await call()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"read {name}: p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms")
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6391/0")
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--types", type=int, default=3)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--skip-writes", action="store_true")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url)
    prefix = f"evmeasure:{uuid.uuid4().hex[:8]}:"
    try:
        memory(client, prefix, args.sensors, args.types, args.shards)
        asyncio.run(read_latency(args.redis_url, prefix, args.shards, args.rounds))
        if not args.skip_writes:
            write_cost(client, f"{prefix}w:", args.sensors, args.batches)
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


if __name__ == "__main__":
    main()

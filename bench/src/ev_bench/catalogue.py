"""Stage 9: the fleet catalogue with 100,000 sensors x 3 types indexed.

The index is built straight from ``IndexEntry``s (what the writer records after each stored
reading) under the stage's own key prefix, its keys' memory summed with ``MEMORY USAGE``; then
``python -m ev_api`` (one core, the client on the other) is asked one request at a time, after
warm-ups: pages of 100 (``sort=id`` and ``sort=last_seen``) and counts (no filter, and the broad
combined ``prefix`` + ``sensor_type`` + ``seen_after``). Every answer is checked.

- reference: ``GET /health`` of the same API, one Redis round trip through the same stack (the
  floor of any route that reads Redis).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from ev_bench.context import RunContext
from ev_bench.errors import BenchError
from ev_bench.processes import Service, cores_for_split, free_port, service_env
from ev_bench.sandbox import delete_keys
from ev_bench.stats import percentile
from ev_schemas import format_epoch_ms
from ev_storage import IndexEntry, ReadingWriter, StorageSettings

SENSORS = 100_000
TYPES = ("battery", "speed", "temperature")
T0_MS = 1_706_788_800_000
#: Sensor n was last seen at T0 + n * 10 ms (+ its type's rank), so seen_after at 30% of the
#: span keeps 70% of the fleet.
SEEN_AFTER_SHARE = 0.3
WARM_UP = 3
PAGE_PATHS = ("/api/v1/sensors?limit=100", "/api/v1/sensors?limit=100&sort=last_seen")


@dataclass(frozen=True, slots=True)
class CatalogueFigures:
    sensors: int
    types: int
    index_bytes: int
    page_ms: list[float]
    count_ms: list[float]
    health_ms: list[float]

    @property
    def bytes_per_sensor_type(self) -> float:
        return self.index_bytes / (self.sensors * self.types)

    @property
    def page_p99_ms(self) -> float:
        return percentile(self.page_ms, 0.99)

    @property
    def count_p99_ms(self) -> float:
        return percentile(self.count_ms, 0.99)

    @property
    def health_p99_ms(self) -> float:
        return percentile(self.health_ms, 0.99)


def fleet_entries(sensors: int, expires_ms: int) -> Iterator[IndexEntry]:
    """``sensors`` sensors (``ev_000000`` ...), each with every type of :data:`TYPES`."""
    for n in range(sensors):
        for k, sensor_type in enumerate(TYPES):
            yield IndexEntry(f"ev_{n:06d}", sensor_type, T0_MS + n * 10 + k, expires_ms)


def count_paths(sensors: int) -> tuple[str, str]:
    """The plain count, and the broad combined one (every id has the prefix ``ev_0``)."""
    seen_after = format_epoch_ms(T0_MS + int(sensors * 10 * SEEN_AFTER_SHARE))
    return (
        "/api/v1/sensors/count",
        f"/api/v1/sensors/count?prefix=ev_0&sensor_type=speed&seen_after={seen_after}",
    )


def build(client: redis.Redis, prefix: str, sensors: int) -> int:
    """Index the fleet under ``prefix``; the bytes its keys take."""
    index = ReadingWriter(client, StorageSettings(key_prefix=prefix)).catalogue
    expires_ms = int(time.time() * 1000) + 86_400_000
    batch: list[IndexEntry] = []
    for entry in fleet_entries(sensors, expires_ms):
        batch.append(entry)
        if len(batch) >= 3000:
            index.update(batch)
            batch = []
    index.update(batch)
    total = 0
    for key in client.scan_iter(match=f"{prefix}catalogue:*", count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
    return total


def ask(connection: http.client.HTTPConnection, path: str) -> tuple[float, Any]:
    """Milliseconds of one request, and its JSON body (200 only)."""
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise BenchError(f"{path} answered {response.status}: {body[:200]!r}")
    return elapsed, json.loads(body)


def measure(
    connection: http.client.HTTPConnection, sensors: int, requests: int
) -> tuple[list[float], list[float], list[float]]:
    """Latencies of pages, counts and ``/health``, each answer checked."""
    plain, combined = count_paths(sensors)
    expected = {plain: sensors, combined: sensors - int(sensors * SEEN_AFTER_SHARE)}
    pages: list[float] = []
    counts: list[float] = []
    health: list[float] = []
    for index in range(WARM_UP + requests):
        keep = index >= WARM_UP
        for path in PAGE_PATHS:
            elapsed, body = ask(connection, path)
            if len(body["items"]) != 100 or not body["next_cursor"]:
                raise BenchError(f"{path}: expected a full page, got {str(body)[:200]}")
            if keep:
                pages.append(elapsed)
        for path, wanted in expected.items():
            elapsed, body = ask(connection, path)
            if body != {"count": wanted}:
                raise BenchError(f"{path}: expected {wanted}, got {body}")
            if keep:
                counts.append(elapsed)
        elapsed, _ = ask(connection, "/health")
        if keep:
            health.append(elapsed)
    return pages, counts, health


def run_catalogue(
    ctx: RunContext, *, sensors: int = SENSORS, requests: int = 100
) -> CatalogueFigures:
    """Index the fleet, start the API on it, measure; the stage's keys are deleted at the end."""
    prefix = ctx.sandbox.prefix("catalogue")
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        ctx.say(f"catalogue: indexing {sensors:,} sensors x {len(TYPES)} types")
        index_bytes = build(client, prefix, sensors)
        per = index_bytes / (sensors * len(TYPES))
        ctx.say(f"catalogue: {index_bytes / 1e6:.1f} MB, {per:.1f} B per sensor and type")
        cores = cores_for_split()
        port = free_port()
        env = service_env(amqp_url=None, redis_url=ctx.redis_url, key_prefix=prefix)
        env |= {"API_PORT": str(port), "API_HOST": "127.0.0.1"}
        with Service.module(
            "api-catalogue", "ev_api", env, ctx.log_dir, core=cores[0] if cores else None
        ) as api:
            api.wait_http(f"http://127.0.0.1:{port}/health")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                with ctx.profiled("api-catalogue", api.pid):
                    pages, counts, health = measure(connection, sensors, requests)
            finally:
                connection.close()
    finally:
        delete_keys(client, prefix)
        client.close()
    figures = CatalogueFigures(sensors, len(TYPES), index_bytes, pages, counts, health)
    ctx.say(
        f"catalogue: page p99 {figures.page_p99_ms:.1f} ms, count p99 "
        f"{figures.count_p99_ms:.1f} ms, /health p99 {figures.health_p99_ms:.1f} ms"
    )
    return figures

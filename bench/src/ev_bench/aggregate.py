"""Stage 8: the aggregate of a week of 1 Hz readings (604,800) into at most 1,000 buckets.

The readings are put straight into ev-storage's history layout (as stage 7 does), then
``GET /api/v1/sensor/{id}/aggregate?max_points=1000`` is asked of ``python -m ev_api`` (one
core, the client on the other) one request at a time, after two warm-up requests; every answer
is checked (every reading counted, at most 1,000 buckets: 673 of 15 minutes). Phase 1 computes
it from the raw history, so the figure is that baseline; the 50 ms target needs the rollups.

- reference: this process reading the same history with ``HGETALL`` and decoding every record,
  the floor of any computation from raw history in Python.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass

import redis

from ev_bench.context import RunContext
from ev_bench.csv_export import BUCKET_MS
from ev_bench.errors import BenchError
from ev_bench.processes import Service, cores_for_split, free_port, service_env
from ev_bench.stats import percentile
from ev_schemas import format_epoch_ms, utc_now
from ev_storage import KeyLayout
from ev_storage.history import META_FIELD, RECORD

SENSOR = "bench_agg"
SENSOR_TYPE = "speed"
WEEK_S = 7 * 86_400
WARM_UP = 2


@dataclass(frozen=True, slots=True)
class AggregateFigures:
    readings: int
    buckets: int
    latencies_ms: list[float]
    raw_read_ms: float

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 0.5)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 0.99)


def load(client: redis.Redis, prefix: str, readings: int) -> tuple[int, int]:
    """``readings`` at 1 Hz ending a minute ago (whole seconds); the range ``[start, end)``."""
    end_ms = (int(utc_now().timestamp()) - 60) * 1000
    start_ms = end_ms - readings * 1000
    buckets: dict[int, bytearray] = {}
    for i in range(readings):
        number, offset = divmod(start_ms + i * 1000, BUCKET_MS)
        buckets.setdefault(number, bytearray()).extend(RECORD.pack(offset, (i % 1000) / 10))
    key = KeyLayout(prefix).history(SENSOR, SENSOR_TYPE)
    pipe = client.pipeline(transaction=False)
    pipe.hset(key, META_FIELD, f"{BUCKET_MS}:{end_ms - 1000}:{min(buckets)}")
    for number, data in buckets.items():
        pipe.hset(key, str(number), bytes(data))
    pipe.execute()
    return start_ms, end_ms


def raw_read_ms(client: redis.Redis, prefix: str) -> float:
    """Milliseconds of HGETALL and decoding every record of the history (best of 3)."""
    key = KeyLayout(prefix).history(SENSOR, SENSOR_TYPE)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        fields: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
        for name, data in fields.items():
            if name != META_FIELD:
                for _record in RECORD.iter_unpack(data):
                    pass
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


def ask(connection: http.client.HTTPConnection, path: str, readings: int) -> tuple[float, int]:
    """Milliseconds of one request and its number of buckets, checked."""
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise BenchError(f"aggregate answered {response.status}: {body[:200]!r}")
    buckets = json.loads(body)["buckets"]
    counted = sum(bucket["count"] for bucket in buckets)
    if counted != readings or len(buckets) > 1000:
        raise BenchError(f"aggregate counted {counted} readings in {len(buckets)} buckets")
    return elapsed, len(buckets)


def run_aggregate(
    ctx: RunContext, *, readings: int = WEEK_S, requests: int = 30
) -> AggregateFigures:
    """Load a week, measure the raw read, then ask the API ``requests`` times."""
    prefix = ctx.sandbox.prefix("aggregate")
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        start_ms, end_ms = load(client, prefix, readings)
        floor = raw_read_ms(client, prefix)
        ctx.say(f"aggregate: {readings:,} readings loaded; raw HGETALL + decode {floor:.0f} ms")
    finally:
        client.close()
    cores = cores_for_split()
    port = free_port()
    env = service_env(amqp_url=None, redis_url=ctx.redis_url, key_prefix=prefix)
    env |= {"API_PORT": str(port), "API_HOST": "127.0.0.1"}
    path = (
        f"/api/v1/sensor/{SENSOR}/aggregate?sensor_type={SENSOR_TYPE}&max_points=1000"
        f"&start_time={format_epoch_ms(start_ms)}&end_time={format_epoch_ms(end_ms)}"
    )
    latencies: list[float] = []
    with Service.module(
        "api-aggregate", "ev_api", env, ctx.log_dir, core=cores[0] if cores else None
    ) as api:
        api.wait_http(f"http://127.0.0.1:{port}/health")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            with ctx.profiled("api-aggregate", api.pid):
                for index in range(WARM_UP + requests):
                    elapsed, buckets = ask(connection, path, readings)
                    if index >= WARM_UP:
                        latencies.append(elapsed)
        finally:
            connection.close()
    figures = AggregateFigures(readings, buckets, latencies, floor)
    ctx.say(
        f"aggregate: {buckets} buckets, p50 {figures.p50_ms:.0f} ms, p99 {figures.p99_ms:.0f} ms"
    )
    return figures

"""Stage 8: the aggregate of a week of 1 Hz readings (604,800) into at most 1,000 buckets, and
what keeping the rollups costs each write.

The week is stored twice through ``ReadingWriter``, batch by batch in turns: once with rollups
(``history_rollups=True``, the default) for one sensor, once without for another. ``INFO
commandstats`` (the write script's server time) after each batch gives the Redis time per
stored reading of both: their ratio is ``write_cost_ratio_with_rollups`` (target <= 1.25).
Then ``GET /api/v1/sensor/{id}/aggregate?max_points=1000`` is asked of ``python -m ev_api``
(one core, the client on the other) one request at a time, after two warm-up requests; every
answer is checked (every reading counted, at most 1,000 buckets: 673 of 15 minutes). The
sensor without rollups is asked a few times too: the same answer from every reading.

- reference: this process reading that history with ``HGETALL`` and decoding every record, the
  floor of any computation from raw history in Python.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass

import redis

from ev_bench.context import RunContext
from ev_bench.errors import BenchError
from ev_bench.processes import Service, cores_for_split, free_port, service_env
from ev_bench.stats import percentile
from ev_schemas import Reading, default_catalogue, format_epoch_ms, from_epoch_ms, utc_now
from ev_storage import KeyLayout, ReadingWriter, StorageSettings
from ev_storage.history import RECORD

SENSOR = "bench_agg"
RAW_SENSOR = "bench_agg_raw"
SENSOR_TYPE = "speed"
WEEK_S = 7 * 86_400
WARM_UP = 2
#: Readings stored per turn (one script call per 100 of them).
BATCH = 2000


@dataclass(frozen=True, slots=True)
class AggregateFigures:
    readings: int
    buckets: int
    latencies_ms: list[float]
    raw_latencies_ms: list[float]
    raw_read_ms: float
    #: Server time of the write script per stored reading, with and without rollups (µs).
    write_us_with: float
    write_us_without: float

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 0.5)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    @property
    def raw_p50_ms(self) -> float:
        return percentile(self.raw_latencies_ms, 0.5)

    @property
    def write_cost_ratio(self) -> float:
        return self.write_us_with / self.write_us_without


def _script_usec(client: redis.Redis) -> int:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("usec", 0))


def load(client: redis.Redis, prefix: str, readings: int) -> tuple[int, int, float, float]:
    """``readings`` at 1 Hz ending a minute ago (whole seconds), stored for :data:`SENSOR` with
    rollups and for :data:`RAW_SENSOR` without, in turns; the range ``[start, end)`` and the
    script's µs per reading with and without rollups."""
    end_ms = (int(utc_now().timestamp()) - 60) * 1000
    start_ms = end_ms - readings * 1000
    unit = default_catalogue()[SENSOR_TYPE].unit
    with_rollups = ReadingWriter(client, StorageSettings(key_prefix=prefix))
    without = ReadingWriter(client, StorageSettings(key_prefix=prefix, history_rollups=False))
    spent = {SENSOR: 0, RAW_SENSOR: 0}
    for first in range(0, readings, BATCH):
        moments = [
            from_epoch_ms(start_ms + i * 1000) for i in range(first, min(first + BATCH, readings))
        ]
        for sensor, writer in ((SENSOR, with_rollups), (RAW_SENSOR, without)):
            batch = [
                Reading.trusted(sensor, SENSOR_TYPE, moment, ((first + n) % 1000) / 10, unit)
                for n, moment in enumerate(moments)
            ]
            before = _script_usec(client)
            writer.store_many(batch)
            spent[sensor] += _script_usec(client) - before
    return start_ms, end_ms, spent[SENSOR] / readings, spent[RAW_SENSOR] / readings


def raw_read_ms(client: redis.Redis, prefix: str) -> float:
    """Milliseconds of HGETALL and decoding every record of the history (best of 3)."""
    key = KeyLayout(prefix).history(RAW_SENSOR, SENSOR_TYPE)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        fields: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
        for name, data in fields.items():
            if name.isdigit():  # the buckets, not meta
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
    ctx: RunContext, *, readings: int = WEEK_S, requests: int = 30, raw_requests: int = 3
) -> AggregateFigures:
    """Store a week twice (measuring the writes), measure the raw read, then ask the API
    ``requests`` times (``raw_requests`` for the sensor without rollups)."""
    prefix = ctx.sandbox.prefix("aggregate")
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        start_ms, end_ms, write_with, write_without = load(client, prefix, readings)
        floor = raw_read_ms(client, prefix)
        ctx.say(
            f"aggregate: {readings:,} readings stored twice; write script {write_with:.1f} µs "
            f"per reading with rollups, {write_without:.1f} without "
            f"({write_with / write_without:.2f}x); raw HGETALL + decode {floor:.0f} ms"
        )
    finally:
        client.close()
    cores = cores_for_split()
    port = free_port()
    env = service_env(amqp_url=None, redis_url=ctx.redis_url, key_prefix=prefix)
    env |= {"API_PORT": str(port), "API_HOST": "127.0.0.1"}
    query = (
        f"aggregate?sensor_type={SENSOR_TYPE}&max_points=1000"
        f"&start_time={format_epoch_ms(start_ms)}&end_time={format_epoch_ms(end_ms)}"
    )
    latencies: list[float] = []
    raw_latencies: list[float] = []
    with Service.module(
        "api-aggregate", "ev_api", env, ctx.log_dir, core=cores[0] if cores else None
    ) as api:
        api.wait_http(f"http://127.0.0.1:{port}/health")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            with ctx.profiled("api-aggregate", api.pid):
                for index in range(WARM_UP + requests):
                    elapsed, buckets = ask(connection, f"/api/v1/sensor/{SENSOR}/{query}", readings)
                    if index >= WARM_UP:
                        latencies.append(elapsed)
            for _ in range(raw_requests):
                elapsed, _ = ask(connection, f"/api/v1/sensor/{RAW_SENSOR}/{query}", readings)
                raw_latencies.append(elapsed)
        finally:
            connection.close()
    figures = AggregateFigures(
        readings, buckets, latencies, raw_latencies, floor, write_with, write_without
    )
    ctx.say(
        f"aggregate: {buckets} buckets, p50 {figures.p50_ms:.0f} ms, p99 {figures.p99_ms:.0f} ms "
        f"(from every reading: p50 {figures.raw_p50_ms:.0f} ms)"
    )
    return figures

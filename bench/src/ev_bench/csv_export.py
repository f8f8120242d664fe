"""Stage 7: the API's CSV export of a million readings, against reading the same data raw.

The data is one sensor with four types of 250,000 readings each at 1 Hz, interleaved in time, put
straight into ev-storage's documented history layout (docs/storage.md; the write path has its own
figures in stage 5 and in ev-storage's measure_write_cost.py), so loading takes seconds.

- ceiling: this process reads the same histories with ``HGETALL`` and decodes every record
  (``struct.iter_unpack``): what any Python reader of the layout pays before formatting a row;
- figure: ``GET /api/v1/sensor/{id}/history.csv`` from ``python -m ev_api`` (one core, the
  client on the other), streamed to the end and checked: every row and the completeness marker.
  The API's RSS is sampled every 20 ms; the growth is the peak during the export minus the RSS
  before it.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import redis

from ev_bench.context import RunContext
from ev_bench.errors import BenchError
from ev_bench.processes import Service, cores_for_split, free_port, service_env
from ev_schemas import utc_now
from ev_storage import KeyLayout
from ev_storage.history import META_FIELD, RECORD

SENSOR = "bench_csv"
TYPES = ("battery", "speed", "temperature", "power")
BUCKET_MS = 120_000  # StorageSettings' default history_bucket
READ_BLOCK = 1 << 20
SAMPLE_S = 0.02


@dataclass(frozen=True, slots=True)
class CsvFigures:
    rows: int
    seconds: float
    bytes: int
    rss_before_mb: float
    rss_peak_mb: float
    ceiling_rows_per_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb


def load(client: redis.Redis, prefix: str, readings: int) -> int:
    """``readings`` split over :data:`TYPES`, one a second per type, ending a minute ago."""
    per_type = readings // len(TYPES)
    end_ms = int((utc_now() - timedelta(minutes=1)).timestamp()) * 1000
    start_ms = end_ms - (per_type - 1) * 1000
    keys = KeyLayout(prefix)
    for index, sensor_type in enumerate(TYPES):
        buckets: dict[int, bytearray] = defaultdict(bytearray)
        for i in range(per_type):
            number, offset = divmod(start_ms + i * 1000, BUCKET_MS)
            buckets[number] += RECORD.pack(offset, round(50 + index + (i % 500) / 10, 1))
        key = keys.history(SENSOR, sensor_type)
        pipe = client.pipeline(transaction=False)
        pipe.hset(key, META_FIELD, f"{BUCKET_MS}:{end_ms}:{min(buckets)}")
        for number, data in buckets.items():
            pipe.hset(key, str(number), bytes(data))
        pipe.execute()
    return per_type * len(TYPES)


def raw_read_rate(client: redis.Redis, prefix: str) -> float:
    """Rows per second of HGETALL and decoding every record of every type (best of 3)."""
    keys = [KeyLayout(prefix).history(SENSOR, sensor_type) for sensor_type in TYPES]
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        rows = 0
        for key in keys:
            fields: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
            for name, data in fields.items():
                if name != META_FIELD:
                    rows += sum(1 for _ in RECORD.iter_unpack(data))
        best = max(best, rows / (time.perf_counter() - started))
    return best


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


class PeakRss:
    """The highest RSS of a process while the block runs, sampled every :data:`SAMPLE_S`."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def download(port: int, expected_rows: int) -> tuple[float, int]:
    """Seconds and bytes of one whole export, checked: every row and the marker."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    connection.request("GET", f"/api/v1/sensor/{SENSOR}/history.csv")
    response = connection.getresponse()
    if response.status != 200:
        raise BenchError(f"history.csv answered {response.status}: {response.read()[:200]!r}")
    size = lines = 0
    tail = b""
    while block := response.read(READ_BLOCK):
        size += len(block)
        lines += block.count(b"\n")
        tail = (tail + block)[-200:]
    seconds = time.perf_counter() - started
    connection.close()
    marker = b"# complete: %d rows\r\n" % expected_rows
    if not tail.endswith(marker) or lines != expected_rows + 2:
        raise BenchError(f"incomplete export: {lines} lines, ending {tail[-60:]!r}")
    return seconds, size


def run_csv(ctx: RunContext, *, readings: int) -> CsvFigures:
    """Load, measure the raw read ceiling, then export through the API."""
    prefix = ctx.sandbox.prefix("csv")
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        started = time.perf_counter()
        rows = load(client, prefix, readings)
        ctx.say(f"csv: {rows:,} readings loaded in {time.perf_counter() - started:.1f} s")
        ceiling = raw_read_rate(client, prefix)
        ctx.say(f"csv: raw HGETALL + decode {ceiling:,.0f} rows/s")
    finally:
        client.close()
    cores = cores_for_split()
    server_core = cores[0] if cores else None
    port = free_port()
    env = service_env(amqp_url=None, redis_url=ctx.redis_url, key_prefix=prefix)
    env |= {"API_PORT": str(port), "API_HOST": "127.0.0.1"}
    with Service.module("api-csv", "ev_api", env, ctx.log_dir, core=server_core) as api:
        api.wait_http(f"http://127.0.0.1:{port}/health")
        before = rss_mb(api.pid)
        with PeakRss(api.pid) as peak, ctx.profiled("api-csv", api.pid):
            seconds, size = download(port, rows)
    figures = CsvFigures(rows, seconds, size, before, peak.peak, ceiling)
    ctx.say(
        f"csv: {figures.rows_per_s:,.0f} rows/s ({size / seconds / 1e6:.1f} MB/s), RSS "
        f"{before:.0f} -> peak {peak.peak:.0f} MB"
    )
    return figures

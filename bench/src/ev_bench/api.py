"""Stage 4: the API's read routes under wrk, against a bare FastAPI route on the same settings.

One server at a time runs on one core (taskset), wrk on the other, at a fixed concurrency; each
measurement follows a short warm-up run. The data is one sensor with the latest reading of every
type and exactly 1,000 battery readings, written through the product's write path.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta

import redis

from ev_bench.context import RunContext
from ev_bench.errors import BenchError
from ev_bench.processes import Service, cores_for_split, free_port, service_env
from ev_bench.wrk import WrkResult, require_wrk, run_wrk
from ev_schemas import Reading, default_catalogue, utc_now
from ev_storage import ReadingWriter, StorageSettings

SENSOR = "bench_0001"
HISTORY_POINTS = 1000
WARMUP_S = 2.0

#: What each figure requests (paths under the server's base URL).
ROUTES = {
    "bare": "/hello",
    "latest": f"/api/v1/sensor/{SENSOR}/battery",
    "sensor": f"/api/v1/sensor/{SENSOR}",
    "history": f"/api/v1/sensor/{SENSOR}/history?sensor_type=battery&limit={HISTORY_POINTS}",
}


@dataclass
class ApiFigures:
    """wrk results by route name (``bare``, ``latest``, ``sensor``, ``history``)."""

    connections: int
    seconds: float
    pinned: bool
    results: dict[str, WrkResult] = field(default_factory=dict)


def seed_data(redis_url: str, key_prefix: str) -> None:
    """One sensor: the latest of every type, and exactly HISTORY_POINTS battery readings."""
    client = redis.Redis.from_url(redis_url)
    writer = ReadingWriter(client, StorageSettings(key_prefix=key_prefix))
    end = utc_now().replace(microsecond=0) - timedelta(minutes=1)
    catalogue = default_catalogue()
    battery = [
        Reading(
            sensor_id=SENSOR,
            sensor_type="battery",
            timestamp=end - timedelta(seconds=HISTORY_POINTS - 1 - i),
            value=round(80 - i * 0.01, 2),
            unit="percentage",
        )
        for i in range(HISTORY_POINTS)
    ]
    others = [
        Reading(
            sensor_id=SENSOR,
            sensor_type=kind.name,
            timestamp=end,
            value=max(kind.minimum, min(kind.maximum, 1.0)),
            unit=kind.unit,
        )
        for kind in catalogue.values()
        if kind.name != "battery"
    ]
    try:
        writer.store_many(battery + others)
    finally:
        client.close()


def check_route(base: str, name: str) -> None:
    """One GET before the load: 200, and a full history page."""
    with urllib.request.urlopen(base + ROUTES[name], timeout=10) as answer:  # noqa: S310 - loopback
        body = json.loads(answer.read())
    if name == "history" and len(body["items"]) != HISTORY_POINTS:
        raise BenchError(f"history returned {len(body['items'])} items, not {HISTORY_POINTS}")


def _measure(
    ctx: RunContext,
    figures: ApiFigures,
    base: str,
    name: str,
    core: int | None,
    profile_pid: int | None,
) -> None:
    check_route(base, name)
    url = base + ROUTES[name]
    run_wrk(url, seconds=WARMUP_S, connections=figures.connections, core=core)
    if profile_pid is not None:
        with ctx.profiled(f"api-{name}", profile_pid):
            result = run_wrk(
                url, seconds=figures.seconds, connections=figures.connections, core=core
            )
    else:
        result = run_wrk(url, seconds=figures.seconds, connections=figures.connections, core=core)
    if result.errors:
        raise BenchError(f"{name}: {result.errors} failed requests under wrk")
    figures.results[name] = result
    ctx.say(
        f"{name}: {result.requests_per_s:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms"
    )


def run_api(ctx: RunContext, *, seconds: float, connections: int, profile: bool) -> ApiFigures:
    """The bare route, then GET latest, sensor and history of the real API."""
    require_wrk()
    key_prefix = ctx.sandbox.prefix("api")
    seed_data(ctx.redis_url, key_prefix)
    cores = cores_for_split()
    server_core, load_core = cores if cores else (None, None)
    figures = ApiFigures(connections=connections, seconds=seconds, pinned=cores is not None)
    env = service_env(amqp_url=None, redis_url=ctx.redis_url, key_prefix=key_prefix)
    log_level = env.get("LOG_LEVEL", "info")

    port = free_port()
    bare_args = ["--port", str(port), "--log-level", log_level]
    if env.get("API_ACCESS_LOG", "").lower() in {"1", "true", "yes", "on"}:
        bare_args.append("--access-log")  # the API's setting, so the servers match
    with Service.module(
        "bare-app", "ev_bench.bare_app", env, ctx.log_dir, core=server_core, args=bare_args
    ) as bare:
        base = f"http://127.0.0.1:{port}"
        bare.wait_http(base + ROUTES["bare"])
        _measure(ctx, figures, base, "bare", load_core, None)

    port = free_port()
    env |= {"API_PORT": str(port), "API_HOST": "127.0.0.1"}
    with Service.module("api", "ev_api", env, ctx.log_dir, core=server_core) as api:
        base = f"http://127.0.0.1:{port}"
        api.wait_http(base + "/health")
        for name in ("latest", "sensor", "history"):
            _measure(ctx, figures, base, name, load_core, api.pid if profile else None)
    return figures

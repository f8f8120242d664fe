"""``python -m ev_bench`` (``nox -s bench``): run every stage, print one table, record the run.

Stages, in order: ingest (1, 2), e2e (3), api (4), memory (5), simulator (6), csv (7),
aggregate (8), catalogue (9), alarms (10). Each works
in its own vhost and key prefix of the run's sandbox, removed at the end even after a failure or
Ctrl-C.
Progress goes to stderr; stdout carries the table (and the profiles' top entries with
``--profile``). Exit status 0 when every stage ran (targets met or not), 1 when one could not.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ev_bench.aggregate import run_aggregate
from ev_bench.alarms import run_alarms
from ev_bench.api import run_api
from ev_bench.backlog import fleet_messages
from ev_bench.catalogue import run_catalogue
from ev_bench.context import RunContext
from ev_bench.csv_export import run_csv
from ev_bench.errors import BenchError
from ev_bench.ingest import run_ingest
from ev_bench.latency import run_latency
from ev_bench.machine import describe
from ev_bench.memory import run_memory
from ev_bench.report import Results, append_history, as_json, history_row
from ev_bench.sandbox import Sandbox, VhostAdmin
from ev_bench.simulator import run_simulator
from ev_bench.table import notes, profiles_text, table
from ev_bench.wrk import require_wrk

STAGES = ("ingest", "e2e", "api", "memory", "simulator", "csv", "aggregate", "catalogue", "alarms")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
#: Rough seconds each stage takes on a busy 2-core machine, to share the time budget.
STAGE_SECONDS = {
    "ingest": 200.0,
    "e2e": 90.0,
    "api": 70.0,
    "memory": 30.0,
    "simulator": 60.0,
    "csv": 40.0,
    "aggregate": 60.0,
    "catalogue": 60.0,
    "alarms": 120.0,
}
#: Fleet of the backlog: 100 vehicles x 10 types, 1,000 readings per simulated second.
BACKLOG_VEHICLES = 100


def _stages(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in STAGES:
            raise argparse.ArgumentTypeError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    return names


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ev-bench",
        description="Benchmark the EV telemetry pipeline on the local RabbitMQ and Redis; every "
        "figure is also given as a ratio to a ceiling measured in the same run.",
    )
    add = parser.add_argument
    add("--json", type=Path, help="also write the figures as one JSON object to this path")
    add(
        "--docs",
        type=Path,
        default=Path("docs/benchmarks.md"),
        help="append the run's row to this file's run history (default docs/benchmarks.md)",
    )
    add("--no-record", action="store_true", help="do not append to --docs")
    add("--redis-url", default=os.environ.get("EV_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    add(
        "--amqp-url",
        default=os.environ.get("EV_BENCH_AMQP_URL", DEFAULT_AMQP_URL),
        help="the broker; the run makes private vhosts next to this URL's",
    )
    add(
        "--rabbitmq-api",
        default=os.environ.get("EV_BENCH_RABBITMQ_API"),
        help="management API URL (http://guest:guest@host:15672) where rabbitmqctl is absent",
    )
    add("--only", type=_stages, help=f"comma-separated stages to run: {','.join(STAGES)}")
    add("--skip", type=_stages, default=[], help="comma-separated stages to leave out")
    add("--backlog", type=int, default=100_000, help="readings per drained backlog")
    add("--naive-backlog", type=int, default=10_000, help="backlog of the (slow) naive consumer")
    add("--repeat", type=int, default=3, help="ceiling + consumer pairs; medians are reported")
    add(
        "--e2e-rates",
        type=_rates,
        default=[500.0, 2000.0],
        help="publish rates for latency; 80%% of the measured ingest rate is added",
    )
    add("--e2e-seconds", type=float, default=8.0, help="publishing time per rate")
    add("--wrk-seconds", type=float, default=10.0)
    add("--wrk-connections", type=int, default=32)
    add("--memory-readings", type=int, default=100_000)
    add("--csv-readings", type=int, default=1_000_000, help="readings in the CSV export (7)")
    add("--sim-count", type=int, default=40_000, help="messages per simulator process")
    add(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile the consumer, API and simulator with py-spy; raw profiles go to DIR",
    )
    add(
        "--consumer-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of every consumer process, e.g. CONSUMER_BATCH_MS=5",
    )
    add(
        "--budget-minutes",
        type=float,
        default=9.5,
        help="time budget: fewer ingest repetitions when the machine is slow (default 9.5)",
    )
    add("--log-dir", type=Path, help="keep the services' logs here (default: a temporary dir)")
    return parser


def _validate(args: argparse.Namespace) -> list[str]:
    stages = [s for s in (args.only or STAGES) if s not in args.skip]
    if not stages:
        raise BenchError("no stage left to run")
    if args.repeat < 1 or args.backlog < 1000 or args.naive_backlog < 100:
        raise BenchError("need --repeat >= 1, --backlog >= 1000 and --naive-backlog >= 100")
    if "api" in stages:
        require_wrk()
    return stages


def run(args: argparse.Namespace, ctx: RunContext, stages: list[str]) -> Results:
    load_at_start = os.getloadavg()[0]
    results = Results(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%MZ"),
        machine=describe(args.amqp_url, args.redis_url),
    )
    ctx.say(f"machine: {results.machine.line()}; stages: {', '.join(stages)}")
    profile = ctx.profile_dir is not None
    ctx.reserved_after = sum(STAGE_SECONDS[s] for s in stages if s != "ingest")
    messages = []
    if "ingest" in stages or "alarms" in stages:
        ctx.say(f"rendering {args.backlog:,} fleet readings")
        messages = fleet_messages(args.backlog, vehicles=BACKLOG_VEHICLES, seed=1, id_prefix="ev_")
    if "ingest" in stages:
        results.ingest = run_ingest(
            ctx, messages, repeat=args.repeat, naive_count=args.naive_backlog, profile=profile
        )
    ctx.reserved_after = 0.0
    if "e2e" in stages:
        rates = list(args.e2e_rates)
        if results.ingest is not None:
            rates.append(round(0.8 * results.ingest.consumer_per_s, -1))
        results.latency = run_latency(ctx, rates, duration=args.e2e_seconds, profile=profile)
    if "api" in stages:
        results.api = run_api(
            ctx, seconds=args.wrk_seconds, connections=args.wrk_connections, profile=profile
        )
    if "memory" in stages:
        results.memory = run_memory(ctx, count=args.memory_readings)
        ctx.say(f"history: {results.memory.history_bytes_per_reading:.2f} B per reading")
    if "simulator" in stages:
        bare = None
        if results.ingest is not None and results.ingest.bare_publish:
            bare = sorted(results.ingest.bare_publish)[len(results.ingest.bare_publish) // 2]
        results.simulator = run_simulator(
            ctx, count=args.sim_count, bare_per_s=bare, profile=profile
        )
    if "csv" in stages:
        results.csv = run_csv(ctx, readings=args.csv_readings)
    if "aggregate" in stages:
        results.aggregate = run_aggregate(ctx)
    if "catalogue" in stages:
        results.catalogue = run_catalogue(ctx)
    if "alarms" in stages:
        results.alarms = run_alarms(ctx, messages)
    results.profiles = ctx.profiles
    results.load = (load_at_start, os.getloadavg()[0])
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.ERROR)
    started = time.monotonic()
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="ev-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    failed = True
    try:
        stages = _validate(args)
        admin = VhostAdmin(args.rabbitmq_api)
        with Sandbox(args.amqp_url, args.redis_url, admin) as sandbox:
            ctx = RunContext(
                sandbox=sandbox,
                redis_url=args.redis_url,
                log_dir=log_dir,
                profile_dir=args.profile,
                consumer_env=dict(args.consumer_env),
                deadline=started + 60 * args.budget_minutes,
            )
            results = run(args, ctx, stages)
        failed = False
    except BenchError as exc:
        print(f"ev-bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if failed or args.log_dir is not None:
            print(f"[bench] services' logs: {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    print(table(results))
    if extra := notes(results):
        print("\n" + extra)
    if results.profiles:
        print("\n" + profiles_text(results))
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results), indent=2) + "\n", encoding="utf-8")
    if not args.no_record:
        append_history(args.docs, history_row(results))
    minutes = (time.monotonic() - started) / 60
    print(f"[bench] done in {minutes:.1f} min", file=sys.stderr)
    return 0

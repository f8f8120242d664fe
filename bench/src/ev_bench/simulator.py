"""Stage 6: how fast the simulator publishes with every message confirmed, 1 and 2 processes.

``python -m ev_simulator --rate 0`` (as fast as the broker confirms) into a fresh vhost; the
simulator's own JSON report gives what was confirmed and how long it took. The ceiling is the bare
pika publisher without confirms of the ingest stage (same queues, same run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ev_bench.backlog import fleet_messages, publish_bare
from ev_bench.context import RunContext
from ev_bench.errors import BenchError
from ev_bench.processes import Service, service_env
from ev_bench.stats import rate

VEHICLES = 100
#: The runner's publishing loop: profiles keep only stacks through it (not start-up imports).
RUNNER = "ev_simulator/runner.py"


@dataclass(frozen=True, slots=True)
class SimulatorFigures:
    count: int
    bare_per_s: float  # pika, no confirms, same queues
    one_process_per_s: float
    two_processes_per_s: float


def _simulator(ctx: RunContext, name: str, url: str, count: int, seed: int) -> Service:
    args = [
        "--rate", "0", "--count", str(count), "--vehicles", str(VEHICLES), "--seed", str(seed),
        "--id-prefix", f"s{seed}_", "--declare-topology", "--amqp-url", url,
        "--report-json", str(ctx.log_dir / f"{name}.json"), "--log-level", "WARNING",
    ]  # fmt: skip
    env = service_env(amqp_url=None, redis_url=ctx.redis_url, key_prefix="")
    return Service.module(name, "ev_simulator", env, ctx.log_dir, args=args)


def _report(ctx: RunContext, service: Service, timeout: float) -> tuple[int, float]:
    """(confirmed, seconds) from the simulator's report once it exits."""
    code = service.wait(timeout)
    path = ctx.log_dir / f"{service.name}.json"
    if code != 0 or not path.exists():
        raise BenchError(f"{service.name} exited {code}: {service.tail()}")
    report = json.loads(path.read_text())
    return int(report["published"]), float(report["elapsed_s"])  # "published" = confirmed


def run_simulator(
    ctx: RunContext, *, count: int, bare_per_s: float | None, profile: bool
) -> SimulatorFigures:
    timeout = 300.0
    if bare_per_s is None:
        url = ctx.sandbox.vhost("bare")
        messages = fleet_messages(count, vehicles=VEHICLES, seed=1, id_prefix="b_")
        bare_per_s = publish_bare(url, messages).per_s
        ctx.sandbox.drop_vhost(url)

    url = ctx.sandbox.vhost("sim1")
    with _simulator(ctx, "simulator-1", url, count, seed=1) as one:
        if profile:
            with ctx.profiled("simulator", one.pid, within=RUNNER):
                confirmed, seconds = _report(ctx, one, timeout)
        else:
            confirmed, seconds = _report(ctx, one, timeout)
    one_per_s = rate(confirmed, seconds)
    ctx.say(f"simulator, 1 process: {one_per_s:,.0f} confirmed/s")
    ctx.sandbox.drop_vhost(url)

    url = ctx.sandbox.vhost("sim2")
    with (
        _simulator(ctx, "simulator-2a", url, count, seed=2) as first,
        _simulator(ctx, "simulator-2b", url, count, seed=3) as second,
    ):
        results = [_report(ctx, first, timeout), _report(ctx, second, timeout)]
    # Both start together; the slower one's time bounds the pair.
    two_per_s = rate(sum(c for c, _ in results), max(s for _, s in results))
    ctx.say(f"simulator, 2 processes: {two_per_s:,.0f} confirmed/s")
    ctx.sandbox.drop_vhost(url)
    return SimulatorFigures(count, bare_per_s, one_per_s, two_per_s)

"""Stages 1 and 2: draining one pre-filled backlog, by the no-op ceiling and by the consumers.

Each repetition fills a fresh vhost's quorum queues with the same fleet traffic (timing the bare
publisher on the way: the simulator stage's ceiling), drains it with the no-op consumer, fills it
again and drains it with ``python -m ev_consumer`` into a fresh key prefix. Consumer processes are
timed from the first to the last stored reading, seen by polling the per-sensor summary counts
that the write script keeps (one small Lua sum per poll, so polling costs Redis and the harness
next to nothing).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import redis

from ev_bench.backlog import Outgoing, publish_bare, sensor_ids_of, topology
from ev_bench.context import RunContext
from ev_bench.cpu import CpuMeter, CpuShares
from ev_bench.drain import drain_noop
from ev_bench.errors import BenchError
from ev_bench.processes import Service, service_env
from ev_bench.stats import median, rate
from ev_storage import KeyLayout

POLL_S = 0.02
#: The 2-consumer and naive drains after the rounds take about this share of one round.
AFTER_ROUNDS = 0.8
#: The consume loop of ev_messaging's runner: profiles keep only stacks through it.
#: Stacks of the consumer at work: its consuming thread and the worker thread storing batches.
CONSUMER_LOOP = ("BatchConsumer._consume (", "ReadingPipeline.__call__ (")

_SUM_COUNTS = """
local total = 0
for _, key in ipairs(KEYS) do
    local counts = redis.call('HMGET', key, unpack(ARGV))
    for i = 1, #ARGV do
        if counts[i] then total = total + tonumber(counts[i]) end
    end
end
return total
"""


def script_usec(client: redis.Redis) -> float:
    """Microseconds Redis has spent in EVALSHA since it started (every client's)."""
    return float(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


class StoredCounter:
    """How many distinct readings the given sensors have stored (sum of summary counts)."""

    def __init__(self, client: redis.Redis, prefix: str, sensor_ids: Sequence[str]) -> None:
        self.client = client
        layout = KeyLayout(prefix)
        self._keys = [layout.summary(sensor_id) for sensor_id in sensor_ids]
        self._fields = [f"{name}:count" for name in topology().sensor_types]
        self._script = client.register_script(_SUM_COUNTS)

    def total(self) -> int:
        return int(self._script(keys=self._keys, args=self._fields))


@dataclass(frozen=True, slots=True)
class Drained:
    """A timed drain: readings stored between the first and the last poll that saw progress."""

    count: int
    seconds: float
    cpu: CpuShares
    #: Redis's own time in EVALSHA meanwhile per reading stored (the write script stores a
    #: sensor's readings of a batch in one call; the harness's own counting calls are few).
    script_us: float | None

    @property
    def per_s(self) -> float:
        return rate(self.count, self.seconds)

    def note(self) -> str:
        script = "" if self.script_us is None else f"; Redis {self.script_us:.1f} us per reading"
        return f"(cores: {self.cpu.text()}{script})"


def timed_drain(
    ctx: RunContext,
    services: Sequence[Service],
    counter: StoredCounter,
    expected: int,
    *,
    timeout: float = 180.0,
    profile: str | None = None,
) -> Drained:
    """Start ``services``, time them storing ``expected`` readings, stop them."""
    with ExitStack() as stack:
        for service in services:
            stack.enter_context(service)
        if profile is not None:
            stack.enter_context(ctx.profiled(profile, services[0].pid, within=CONSUMER_LOOP))
        meter = CpuMeter.with_servers({"consumer": [service.pid for service in services]})
        deadline = time.monotonic() + timeout
        first_at, first_count = 0.0, 0
        usec_before = 0.0
        while True:
            count = counter.total()
            now = time.perf_counter()
            if count and not first_count:
                first_at, first_count = now, count
                meter.start()
                usec_before = script_usec(counter.client)
            if count >= expected:
                cpu = meter.stop()
                usec = script_usec(counter.client) - usec_before
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{services[0].name}: {count} of {expected} stored in {timeout}s")
            for service in services:
                service.check_alive()
            time.sleep(POLL_S)
    if count > expected:
        raise BenchError(f"{count} readings stored, {expected} expected: not a fresh prefix?")
    stored = count - first_count
    return Drained(stored, now - first_at, cpu, usec / stored if stored else None)


@dataclass
class IngestFigures:
    """Readings per second of every drain, repetitions kept (medians are reported)."""

    backlog: int = 0
    naive_backlog: int = 0
    bare_publish: list[float] = field(default_factory=list)
    ceiling: list[float] = field(default_factory=list)
    consumer: list[float] = field(default_factory=list)
    two_consumers: float | None = None
    naive: float | None = None
    #: Cores used during the last drain of each kind, by process group.
    cpu: dict[str, CpuShares] = field(default_factory=dict)
    #: Redis's time per write-script call during the last drain of each kind (microseconds).
    script_us: dict[str, float] = field(default_factory=dict)

    @property
    def ceiling_per_s(self) -> float:
        return median(self.ceiling)

    @property
    def consumer_per_s(self) -> float:
        return median(self.consumer)

    @property
    def ratios(self) -> list[float]:
        """Consumer / ceiling of each repetition (each pair ran back to back)."""
        return [c / n for c, n in zip(self.consumer, self.ceiling, strict=True)]


def consumer_service(ctx: RunContext, name: str, amqp_url: str, prefix: str) -> Service:
    env = service_env(
        amqp_url=amqp_url, redis_url=ctx.redis_url, key_prefix=prefix, extra=ctx.consumer_env
    )
    return Service.module(name, "ev_consumer", env, ctx.log_dir)


def run_ingest(
    ctx: RunContext,
    messages: Sequence[Outgoing],
    *,
    repeat: int,
    naive_count: int,
    profile: bool,
) -> IngestFigures:
    """The ceiling and the consumer ``repeat`` times, then 2 consumers and the naive one once."""
    figures = IngestFigures(backlog=len(messages), naive_backlog=min(naive_count, len(messages)))
    sensors = sensor_ids_of(messages)
    queues = topology().queues
    client = redis.Redis.from_url(ctx.redis_url)
    try:
        for round_ in range(1, repeat + 1):
            round_started = time.monotonic()
            url = ctx.sandbox.vhost(f"ingest{round_}")
            published = publish_bare(url, messages)
            figures.bare_publish.append(published.per_s)
            ceiling, figures.cpu["no-op drain"] = drain_noop(url, queues, len(messages))
            figures.ceiling.append(ceiling)
            ctx.say(
                f"round {round_}: bare publish {published.per_s:,.0f}/s, "
                f"no-op drain {ceiling:,.0f}/s (cores: {figures.cpu['no-op drain'].text()})"
            )
            figures.bare_publish.append(publish_bare(url, messages).per_s)  # the refill
            prefix = ctx.sandbox.prefix(f"ingest{round_}")
            drained = timed_drain(
                ctx,
                [consumer_service(ctx, f"consumer-{round_}", url, prefix)],
                StoredCounter(client, prefix, sensors),
                len(messages),
                profile="consumer" if profile and round_ == repeat else None,
            )
            figures.consumer.append(drained.per_s)
            figures.cpu["ev_consumer"] = drained.cpu
            if drained.script_us is not None:
                figures.script_us["ev_consumer"] = drained.script_us
            ctx.say(f"round {round_}: ev_consumer {drained.per_s:,.0f}/s {drained.note()}")
            ctx.sandbox.drop_vhost(url)
            took = time.monotonic() - round_started
            # 2 consumers and the naive one take about AFTER_ROUNDS of a round.
            if round_ < repeat and ctx.time_left() < (1 + AFTER_ROUNDS) * took:
                ctx.say(f"time budget: {round_} round(s) of {repeat}")
                break

        url = ctx.sandbox.vhost("ingest2p")
        publish_bare(url, messages)
        prefix = ctx.sandbox.prefix("ingest2p")
        services = [consumer_service(ctx, f"consumer-2p-{n}", url, prefix) for n in (1, 2)]
        drained = timed_drain(ctx, services, StoredCounter(client, prefix, sensors), len(messages))
        figures.two_consumers, figures.cpu["2 x ev_consumer"] = drained.per_s, drained.cpu
        if drained.script_us is not None:
            figures.script_us["2 x ev_consumer"] = drained.script_us
        ctx.say(f"2 x ev_consumer {drained.per_s:,.0f}/s {drained.note()}")
        ctx.sandbox.drop_vhost(url)

        url = ctx.sandbox.vhost("naive")
        subset = messages[: figures.naive_backlog]
        publish_bare(url, subset)
        prefix = ctx.sandbox.prefix("naive")
        naive = Service.module(
            "naive",
            "ev_bench.naive",
            service_env(amqp_url=None, redis_url=ctx.redis_url, key_prefix=prefix),
            ctx.log_dir,
            args=["--amqp-url", url, "--redis-url", ctx.redis_url, "--key-prefix", prefix],
        )
        drained = timed_drain(
            ctx, [naive], StoredCounter(client, prefix, sensor_ids_of(subset)), len(subset)
        )
        figures.naive, figures.cpu["naive"] = drained.per_s, drained.cpu
        if drained.script_us is not None:
            figures.script_us["naive"] = drained.script_us
        ctx.say(f"naive consumer {drained.per_s:,.0f}/s {drained.note()}")
        ctx.sandbox.drop_vhost(url)
    finally:
        client.close()
    return figures

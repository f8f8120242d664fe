"""Stage 3: end-to-end latency, from publish to the reading's push on the API's WebSocket.

The consumer and the API run as processes (the product's defaults). For each rate, the simulator
publishes a fresh fleet through the product's publisher (``ev_bench.e2e_publisher``, noting when
each sampled sensor's reading left), while this process watches the sampled sensors on
``WS /api/v1/ws/sensor/{id}`` and notes when each reading arrives. Latency = arrival - publish, on
the system-wide monotonic clock. Polling ``GET latest`` would add its own polling interval; the
WebSocket push is the first moment a client can see a reading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio
from redis.asyncio.client import PubSub
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ev_bench.backlog import declare, wait_for_consumers
from ev_bench.broker_latency import broker_latency
from ev_bench.context import RunContext
from ev_bench.cpu import CpuMeter, CpuShares
from ev_bench.e2e_publisher import publish_at_rate
from ev_bench.errors import BenchError
from ev_bench.ingest import consumer_service
from ev_bench.processes import Service, free_port, service_env
from ev_bench.samples import (
    SETTLE_S,
    VEHICLES,
    Key,
    latencies_ms,
    reading_key,
    watched_count,
)
from ev_bench.stats import Distribution, rate
from ev_simulator import sensor_ids
from ev_storage import KeyLayout


@dataclass(frozen=True, slots=True)
class LatencyFigure:
    """One rate: asked and achieved publish rates, the latency distribution, samples lost."""

    target_per_s: float
    achieved_per_s: float
    watched: int
    latency_ms: Distribution | None  # publish -> WebSocket push
    missing: int
    stored_ms: Distribution | None  # publish -> the write script's PUBLISH (consumer side)
    broker_ms: Distribution | None = None  # the ceiling: publish -> a no-op consumer
    cpu: CpuShares | None = None  # cores busy during the measurement


async def _watch(url: str, arrivals: dict[Key, int], opened: asyncio.Event) -> None:
    socket: ClientConnection
    async with connect(url, proxy=None) as socket:
        opened.set()
        try:
            async for text in socket:
                at = time.monotonic_ns()
                reading = json.loads(text)
                key = reading_key(
                    reading["sensor_id"], reading["sensor_type"], reading["timestamp"]
                )
                arrivals[key] = at
        except ConnectionClosed:
            return


async def _listen(pubsub: PubSub, arrivals: dict[Key, int]) -> None:
    """Note when each reading appears on its live channel: stored by the consumer."""
    async for message in pubsub.listen():
        if message["type"] == "message":
            at = time.monotonic_ns()
            reading = json.loads(message["data"])
            arrivals[
                reading_key(reading["sensor_id"], reading["sensor_type"], reading["timestamp"])
            ] = at


async def _subscribed(client: redis.asyncio.Redis, channels: list[str], timeout: float) -> None:
    """Wait until the API's hub (it subscribes after accepting a WebSocket) and our own
    listener have subscribed every channel."""
    deadline = time.monotonic() + timeout
    while True:
        counts = await client.pubsub_numsub(*channels)
        if all(int(count) >= 2 for _name, count in counts):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the API did not subscribe the live channels within {timeout:g}s")
        await asyncio.sleep(0.02)


async def _measure(
    ctx: RunContext,
    *,
    api_port: int,
    amqp_url: str,
    key_prefix: str,
    per_s: float,
    duration: float,
    label: str,
) -> LatencyFigure:
    id_prefix = f"{label}_"
    watched = sensor_ids(VEHICLES, id_prefix)[: watched_count(per_s, VEHICLES)]
    arrivals: dict[Key, int] = {}
    stored: dict[Key, int] = {}
    client = redis.asyncio.Redis.from_url(ctx.redis_url)
    layout = KeyLayout(key_prefix)
    channels = [layout.live_channel(s) for s in watched]
    pubsub = client.pubsub()
    await pubsub.subscribe(*channels)
    watchers = [asyncio.create_task(_listen(pubsub, stored))]
    opened = [asyncio.Event() for _ in watched]
    watchers += [
        asyncio.create_task(
            _watch(f"ws://127.0.0.1:{api_port}/api/v1/ws/sensor/{sensor_id}", arrivals, event)
        )
        for sensor_id, event in zip(watched, opened, strict=True)
    ]
    count = max(1, round(per_s * duration))
    try:
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 30)
        await _subscribed(client, channels, 30)
        result = await asyncio.to_thread(
            publish_at_rate,
            amqp_url=amqp_url,
            per_s=per_s,
            count=count,
            vehicles=VEHICLES,
            id_prefix=id_prefix,
            watched=watched,
            out=ctx.log_dir / f"e2e-{label}.json",
            log=ctx.log_dir / f"e2e-publisher-{label}.log",
        )
        records = result["records"]
        deadline = time.monotonic() + SETTLE_S
        while len(latencies_ms(records, arrivals)[0]) < len(records):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await pubsub.aclose()
        await client.aclose()
    found, missing = latencies_ms(records, arrivals)
    in_redis, _ = latencies_ms(records, stored)
    return LatencyFigure(
        target_per_s=per_s,
        achieved_per_s=rate(int(result["sent"]), float(result["elapsed_s"])),
        watched=len(watched),
        latency_ms=Distribution.of(found) if found else None,
        missing=missing,
        stored_ms=Distribution.of(in_redis) if in_redis else None,
    )


def run_latency(
    ctx: RunContext, rates: Sequence[float], *, duration: float, profile: bool
) -> list[LatencyFigure]:
    """Consumer and API up on a fresh vhost and prefix; one measurement per rate."""
    amqp_url = ctx.sandbox.vhost("e2e")
    key_prefix = ctx.sandbox.prefix("e2e")
    declare(amqp_url)
    port = free_port()
    api_env = service_env(
        amqp_url=None,
        redis_url=ctx.redis_url,
        key_prefix=key_prefix,
        extra={"API_PORT": str(port), "API_HOST": "127.0.0.1"},
    )
    figures: list[LatencyFigure] = []
    with (
        consumer_service(ctx, "e2e-consumer", amqp_url, key_prefix) as consumer,
        Service.module("e2e-api", "ev_api", api_env, ctx.log_dir) as api,
    ):
        api.wait_http(f"http://127.0.0.1:{port}/health")
        wait_for_consumers(amqp_url, 1)
        for index, per_s in enumerate(rates):
            profiled = profile and index == 1
            label = f"e{index}"
            measure = _measure(
                ctx,
                api_port=port,
                amqp_url=amqp_url,
                key_prefix=key_prefix,
                per_s=per_s,
                duration=duration,
                label=label,
            )
            meter = CpuMeter.with_servers({"consumer": [consumer.pid], "api": [api.pid]})
            meter.start()
            if profiled:
                with ctx.profiled(f"e2e-consumer-{per_s:.0f}", consumer.pid):
                    figure = asyncio.run(measure)
            else:
                figure = asyncio.run(measure)
            cpu = meter.stop()
            consumer.check_alive()
            broker = broker_latency(ctx, per_s=per_s, duration=duration, label=label)
            figure = dataclasses.replace(figure, broker_ms=broker, cpu=cpu)
            figures.append(figure)
            parts = [
                f"{name} p50 {dist.p50:.1f} ms, p99 {dist.p99:.1f} ms"
                for name, dist in (
                    ("push", figure.latency_ms),
                    ("stored", figure.stored_ms),
                    ("broker only", figure.broker_ms),
                )
                if dist is not None
            ]
            ctx.say(
                f"e2e at {per_s:,.0f}/s (achieved {figure.achieved_per_s:,.0f}/s): "
                + "; ".join(parts)
                + f"; {figure.missing} missing; cores: {cpu.text()}"
            )
    ctx.sandbox.drop_vhost(amqp_url)
    return figures

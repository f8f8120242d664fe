"""SIGTERM mid-stream, and several consumers on the same queues.

The same traffic (valid readings out of order, duplicates, malformed and unroutable messages)
goes once to a single consumer and once to three consumers, one of which is stopped with
SIGTERM mid-stream (it must finish its batch and exit 0 within 10 s) and replaced. Both runs
must end exact, and in the same Redis state: the same latest readings, the same summaries (sums
up to float rounding: addition order differs), the same histories.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pika
import pytest
import redis.asyncio

from ev_messaging import INVALID_QUEUE, UNROUTED_QUEUE
from ev_schemas import default_catalogue
from ev_storage import ReadingReader, StorageSettings
from tests.faults.accounting import Expectation
from tests.faults.malformed import Generator, Traffic
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, publish_pipelined
from tests.support import wait_until

CONSUMERS = 3
RATE = 1_000  # msg/s while a consumer is stopped and replaced: about 9 s of stream
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)

pytestmark = pytest.mark.integration


def expectation(traffic: Traffic) -> Expectation:
    return Expectation(
        published=len(traffic.messages),
        stored=dict(traffic.stored),
        invalid=len(traffic.invalid),
        unrouted=len(traffic.unrouted),
        duplicates=traffic.duplicates,
    )


def purge_side_queues(amqp_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for queue in (INVALID_QUEUE, UNROUTED_QUEUE):
            channel.queue_purge(queue)
    finally:
        connection.close()


def state(redis_url: str, prefix: str, sensors: list[str]) -> dict[str, Any]:
    """What the API would show of every sensor: latest, summary, full history."""

    async def read() -> dict[str, Any]:
        client = redis.asyncio.Redis.from_url(redis_url)
        reader = ReadingReader(client, StorageSettings(key_prefix=prefix), default_catalogue())
        result: dict[str, Any] = {}
        try:
            for sensor_id in sensors:
                summary = await reader.summary(sensor_id)
                items, cursor = [], None
                while True:
                    page = await reader.history(
                        sensor_id, start=EARLIEST, end=LATEST, limit=5000, cursor=cursor
                    )
                    items += [item.model_dump(mode="json") for item in page.items]
                    if (cursor := page.next_cursor) is None:
                        break
                result[sensor_id] = {
                    "latest": await reader.latest_all_raw(sensor_id),
                    "summary": None if summary is None else summary.model_dump(mode="json"),
                    "history": items,
                }
        finally:
            await client.aclose()
        return result

    return asyncio.run(read())


def without_means(snapshot: dict[str, Any]) -> tuple[dict[str, Any], dict[tuple[str, str], float]]:
    means = {}
    for sensor_id, seen in snapshot.items():
        for sensor_type, summary in (seen["summary"] or {}).get("types", {}).items():
            means[(sensor_id, sensor_type)] = summary.pop("mean")
    return snapshot, means


def test_three_consumers_and_a_sigterm_end_in_the_state_of_one(
    amqp_url: str,
    redis_url: str,
    key_prefix: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
) -> None:
    traffic = Generator(seed=17, now=datetime.now(UTC)).traffic(good=9_000, bad=300, unroutable=30)
    expected = expectation(traffic)
    sensors = sorted(expected.sensors)
    one, many = f"{key_prefix}one:", f"{key_prefix}many:"

    baseline = scenario("baseline: one consumer", redis_url, one)
    consumers.start(REDIS_KEY_PREFIX=one)
    publish_pipelined(amqp_url, traffic.messages)
    baseline.finish(expected, record=False)
    purge_side_queues(amqp_url)

    run = scenario(f"{CONSUMERS} consumers, one stopped by SIGTERM mid-stream", redis_url, many)
    for _ in range(CONSUMERS):
        consumers.start(REDIS_KEY_PREFIX=many)
    publisher = threading.Thread(
        target=publish_pipelined, args=(amqp_url, traffic.messages), kwargs={"rate": RATE}
    )
    publisher.start()
    wait_until(run.live.reached(1_500), 60, "a first part stored")
    stopped = consumers.running[1]
    code, took = stopped.terminate(timeout=10)
    assert code == 0, stopped.tail()
    consumers.start(REDIS_KEY_PREFIX=many)
    run.fault_over()
    run.notes["stored_when_replaced"] = run.live.count
    publisher.join(timeout=120)
    assert not publisher.is_alive()
    run.notes["sigterm_mid_stream_exit_s"] = round(took, 3)
    run.notes["consumers"] = CONSUMERS
    run.finish(expected)

    single, single_means = without_means(state(redis_url, one, sensors))
    several, several_means = without_means(state(redis_url, many, sensors))
    assert several == single
    assert several_means == pytest.approx(single_means, rel=1e-12)

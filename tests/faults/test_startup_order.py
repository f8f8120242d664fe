"""The consumer started before RabbitMQ and Redis are reachable waits and retries, then drains.

Both are behind forwarders that refuse connections at first (as a server that is not up yet).
The broker opens first: the consumer connects, declares the topology and takes deliveries, but
acknowledges none while Redis still refuses. Then Redis opens and everything is stored.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.accounting import Expectation
from tests.faults.forwarder import Forwarder
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, simulate, simulator_report
from tests.support import wait_until

pytestmark = pytest.mark.integration


def test_consumer_started_before_broker_and_redis_waits_then_drains(
    amqp_url: str,
    redis_url: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
    tmp_path: Path,
) -> None:
    run = scenario("started before RabbitMQ and Redis were reachable", redis_url)
    amqp = urllib.parse.urlsplit(amqp_url)
    target = urllib.parse.urlsplit(redis_url)
    with (
        Forwarder(amqp.port or 5672, listening=False) as broker,
        Forwarder(target.port or 6379, target.hostname or "127.0.0.1", listening=False) as redis,
    ):
        through = urllib.parse.urlunsplit(
            amqp._replace(netloc=f"guest:guest@127.0.0.1:{broker.port}")
        )
        consumer = consumers.start(
            RABBITMQ_URLS=through, REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis.port)
        )
        # Meanwhile a fleet publishes straight to the broker (the simulator declares the queues).
        simulator = simulate(amqp_url, tmp_path, count=4_000, rate=0, seed=21)
        report = simulator_report(simulator, tmp_path, timeout=120)
        wait_until(lambda: consumer.output().count("broker unavailable") >= 2, 30, "retries")
        assert consumer.alive, consumer.tail()

        broker.accept()
        wait_until(lambda: broker.connections >= 1, 30, "the consumer to connect")
        wait_until(consumer.logged("retrying in"), 30, "a batch waiting for Redis")
        time.sleep(1.0)  # a while with Redis down: still alive, nothing stored (not readiness)
        assert consumer.alive, consumer.tail()
        assert run.live.count == 0

        redis.accept()
        run.fault_over()
        run.notes["broker_retries_logged"] = consumer.output().count("broker unavailable")
        run.finish(Expectation.from_report(report))

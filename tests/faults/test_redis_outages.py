"""Redis unavailable for seconds mid-stream, on a private redis-server the test controls.

The server keeps its data through every fault, so the accounting stays exact: it hangs (SIGSTOP,
then SIGCONT: connections open, nothing answered, requests executed late) and it is cut off
(the forwarder resets the connections and refuses new ones). Meanwhile the consumer acknowledges
nothing, holds no more than its prefetch window, and resumes by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.accounting import Expectation
from tests.faults.forwarder import Forwarder
from tests.faults.scenario import TYPE_QUEUES, Scenario
from tests.faults.support import (
    Consumers,
    RedisServer,
    simulate,
    simulator_report,
)
from tests.support import queue_depth, wait_until

OUTAGE_S = 4.0
PREFETCH = 100  # per queue consumer: at most ~10 queues x 100 readings held while Redis is down

pytestmark = pytest.mark.integration


def ready_in_type_queues(amqp_url: str) -> int:
    return sum(max(queue_depth(amqp_url, queue), 0) for queue in TYPE_QUEUES)


def test_hung_and_unreachable_redis_mid_stream(
    amqp_url: str,
    consumers: Consumers,
    private_redis: RedisServer,
    scenario: Callable[..., Scenario],
    tmp_path: Path,
) -> None:
    run = scenario("Redis hung (SIGSTOP) and cut off (refused)", private_redis.url)
    with Forwarder(private_redis.port) as link:
        consumer = consumers.start(
            REDIS_HOST="127.0.0.1", REDIS_PORT=str(link.port), CONSUMER_PREFETCH=str(PREFETCH)
        )
        simulator = simulate(amqp_url, tmp_path, count=15_000, rate=1_000, seed=7, bad_ratio=0.05)
        held: list[int] = []

        # 1. A hung server: every request times out; some are executed after SIGCONT, when
        #    the consumer has already given up on them (and will write them again).
        wait_until(run.live.reached(2_000), 60, "a first part stored")
        private_redis.pause()
        time.sleep(OUTAGE_S)  # the outage's length is the fault, not a readiness wait
        held.append(ready_in_type_queues(amqp_url))
        assert consumer.alive, consumer.tail()
        private_redis.resume()
        run.fault_over()

        # 2. An unreachable server: connections reset, new ones refused.
        run.recovered()
        link.refuse()
        time.sleep(OUTAGE_S)
        held.append(ready_in_type_queues(amqp_url))
        assert consumer.alive, consumer.tail()
        link.accept()
        run.fault_over()

        report = simulator_report(simulator, tmp_path, timeout=120)
        run.notes["outage_s"] = OUTAGE_S
        run.notes["ready_in_queues_at_outage_end"] = held
        run.finish(Expectation.from_report(report))
    # Stopped pulling: the broker kept what the consumer's prefetch window could not take.
    assert all(ready > 0 for ready in held), held
    assert "retrying in" in consumer.output()


def test_sigterm_while_redis_hangs_exits_promptly_and_loses_nothing(
    amqp_url: str,
    consumers: Consumers,
    private_redis: RedisServer,
    scenario: Callable[..., Scenario],
    tmp_path: Path,
) -> None:
    run = scenario("SIGTERM while Redis hangs", private_redis.url)
    consumer = consumers.start(REDIS_HOST="127.0.0.1", REDIS_PORT=str(private_redis.port))
    simulator = simulate(amqp_url, tmp_path, count=3_000, rate=1_000, seed=8, bad_ratio=0.05)
    wait_until(run.live.reached(500), 60, "a first part stored")
    private_redis.pause()
    wait_until(consumer.logged("retrying in"), 30, "the consumer to retry")
    code, took = consumer.terminate(timeout=10)
    assert code == 0, consumer.tail()
    private_redis.resume()
    consumers.start(REDIS_HOST="127.0.0.1", REDIS_PORT=str(private_redis.port))
    run.fault_over()
    report = simulator_report(simulator, tmp_path, timeout=60)
    run.notes["sigterm_during_outage_exit_s"] = round(took, 3)
    run.finish(Expectation.from_report(report))

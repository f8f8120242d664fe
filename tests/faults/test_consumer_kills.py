"""kill -9 of the consumer at random points of a stream of tens of thousands of readings.

Nothing the consumer held unacknowledged is lost (the broker delivers it again), nothing is
stored or counted twice (the write script is idempotent), and an invalid message is moved aside
once (its move and the batch's ack commit in one transaction).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.accounting import Expectation
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, simulate, simulator_report
from tests.support import wait_until

SEED = 20240201
COUNT = 24_000
RATE = 1_500  # msg/s: about 16 s of publishing
KILLS = 5
BAD_RATIO = 0.05

pytestmark = pytest.mark.integration


def test_kill_9_at_random_points_loses_nothing_and_counts_nothing_twice(
    amqp_url: str,
    redis_url: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
    tmp_path: Path,
) -> None:
    run = scenario(f"kill -9 consumer x{KILLS}", redis_url)
    consumer = consumers.start()
    simulator = simulate(amqp_url, tmp_path, count=COUNT, rate=RATE, seed=SEED, bad_ratio=BAD_RATIO)
    rng = random.Random(SEED)
    # Kill after a random share of the stream has been stored, plus a random few milliseconds,
    # so the kills land in different phases of a batch: collecting, writing, committing.
    approx_stored = COUNT * (1 - BAD_RATIO) * 0.9
    thresholds = sorted(int(rng.uniform(0.05, 0.8) * approx_stored) for _ in range(KILLS))
    floor = 0
    for threshold in thresholds:
        target = max(threshold, floor)
        wait_until(run.live.reached(target), 60, f"{target} readings stored")
        time.sleep(rng.uniform(0, 0.05))  # where in the batch: placement, not readiness
        assert consumer.alive, consumer.tail()
        consumer.kill()
        consumer = consumers.start()
        run.fault_over()
        run.recovered()  # the next kill waits for the new process to work
        floor = run.live.count
    report = simulator_report(simulator, tmp_path, timeout=120)
    run.notes["kill_points"] = thresholds
    run.finish(Expectation.from_report(report))

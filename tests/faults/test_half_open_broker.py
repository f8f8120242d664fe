"""A half-open broker link: the route to the consumer's broker node becomes a black hole.

The consumer reaches RabbitMQ through two forwarders, listed in that order in RABBITMQ_URLS.
The first stops moving bytes both ways without closing anything, and takes new connections into
the same black hole: no reset, no FIN, no refusal; only silence. The consumer must notice within
about twice its AMQP heartbeat, give the link up, and fail over to the second address (after the
first, tried again, fails to answer its handshake); what it held unacknowledged is delivered again
there and stored once: exact accounting, nothing lost or doubled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.accounting import Expectation
from tests.faults.forwarder import Forwarder
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, amqp_via, simulate, simulator_report
from tests.support import poll_until, wait_until

HEARTBEAT_S = 2
#: Twice the heartbeat, plus room for a loaded machine (pika alone takes 7-14 s here).
NOTICE_BOUND_S = 2 * HEARTBEAT_S + 2.5

pytestmark = pytest.mark.integration


def test_a_black_holed_link_is_noticed_within_two_heartbeats_and_failed_over(
    amqp_url: str,
    redis_url: str,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
    tmp_path: Path,
) -> None:
    run = scenario("broker link into a black hole, failed over", redis_url)
    with Forwarder(5672) as first, Forwarder(5672) as second:
        urls = f"{amqp_via(amqp_url, first.port)},{amqp_via(amqp_url, second.port)}"
        consumer = consumers.start(RABBITMQ_URLS=urls, RABBITMQ_HEARTBEAT_S=str(HEARTBEAT_S))
        simulator = simulate(amqp_url, tmp_path, count=15_000, rate=1_000, seed=11, bad_ratio=0.05)
        wait_until(run.live.reached(2_000), 60, "a first part stored through the first address")
        assert (first.connections, second.stats.accepted) == (1, 0)

        first.black_hole()
        started = time.monotonic()
        noticed = poll_until(consumer.logged("consuming interrupted"), 60)
        noticed_s = time.monotonic() - started
        assert noticed, f"the consumer never gave up the silent link:\n{consumer.tail()}"
        wait_until(lambda: second.connections > 0, 60, "a connection through the second address")
        failed_over_s = time.monotonic() - started
        run.fault_over()

        report = simulator_report(simulator, tmp_path, timeout=120)
        run.notes["half_open_noticed_s"] = round(noticed_s, 2)
        run.notes["failed_over_s"] = round(failed_over_s, 2)
        run.notes["held_in_black_hole"] = first.stats.held
        run.finish(Expectation.from_report(report))
    assert noticed_s <= NOTICE_BOUND_S, (noticed_s, consumer.tail())
    assert consumers.started == [consumer], "one process throughout: it never gave up"

"""The consumer's broker connection cut and restored while a stream is published.

The consumer reaches RabbitMQ through the forwarder, which resets its connection, refuses new
ones for a while, and leaves it silently half-open (only the AMQP heartbeat notices that); and
RabbitMQ itself closes the connection (``rabbitmqctl close_connection``: 320 CONNECTION_FORCED).
Each time the consumer reconnects with capped backoff, declares the topology again, and settles
nothing of the dead channel: what it held is delivered again and stored once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.accounting import Expectation
from tests.faults.broker import BrokerAdmin
from tests.faults.forwarder import Forwarder
from tests.faults.scenario import Scenario
from tests.faults.support import (
    Consumers,
    amqp_via,
    simulate,
    simulator_report,
)
from tests.support import poll_until, wait_until

HEARTBEAT_S = 2  # the consumer gives a silent link up after two heartbeats
REFUSED_S = 3.0

pytestmark = pytest.mark.integration


def test_connection_reset_refused_half_open_and_closed_by_the_broker(
    amqp_url: str,
    redis_url: str,
    vhost: str,
    broker_admin: BrokerAdmin,
    consumers: Consumers,
    scenario: Callable[..., Scenario],
    tmp_path: Path,
) -> None:
    run = scenario("broker link reset, refused, half-open, closed by broker", redis_url)
    with Forwarder(5672) as link:
        consumer = consumers.start(
            RABBITMQ_URLS=amqp_via(amqp_url, link.port), RABBITMQ_HEARTBEAT_S=str(HEARTBEAT_S)
        )
        simulator = simulate(amqp_url, tmp_path, count=24_000, rate=1_200, seed=9, bad_ratio=0.05)

        def reconnected(before: int) -> Callable[[], bool]:
            return lambda: link.stats.accepted > before and link.connections > 0

        # 1. Reset: the consumer sees ECONNRESET and reconnects.
        wait_until(run.live.reached(1_500), 60, "a first part stored")
        accepted = link.stats.accepted
        assert link.cut() == 1
        wait_until(reconnected(accepted), 30, "a reconnect after the reset")
        run.fault_over()

        # 2. Refused for a while: the broker looks down; the consumer keeps retrying.
        run.recovered()
        link.refuse()
        time.sleep(REFUSED_S)  # the outage's length is the fault, not a readiness wait
        assert consumer.alive, consumer.tail()
        accepted = link.stats.accepted
        link.accept()
        wait_until(reconnected(accepted), 30, "a reconnect once the broker is back")
        run.fault_over()

        # 3. Closed by the broker (320 CONNECTION_FORCED), as on a broker shutdown.
        run.recovered()
        accepted = link.stats.accepted
        wait_until(lambda: broker_admin.close_connections(vhost, "ev-consumer") > 0, 60, "closed")
        wait_until(reconnected(accepted), 30, "a reconnect after close_connection")
        run.fault_over()

        # 4. Half-open: bytes stop flowing both ways, the sockets stay open. Only the heartbeat
        #    can tell; the broker drops its side, the consumer gives up its side and reconnects.
        run.recovered()
        accepted = link.stats.accepted
        link.stall()
        stalled_at = time.monotonic()
        gave_up = poll_until(lambda: link.stats.accepted > accepted, 4 * HEARTBEAT_S + 15)
        noticed_s = time.monotonic() - stalled_at
        link.resume()
        assert gave_up, f"the consumer never gave up the silent link:\n{consumer.tail()}"
        run.fault_over()

        report = simulator_report(simulator, tmp_path, timeout=120)
        run.notes["half_open_noticed_s"] = round(noticed_s, 2)
        run.notes["connections_accepted"] = link.stats.accepted
        run.finish(Expectation.from_report(report))
    assert consumers.started == [consumer], "one process throughout: it never gave up"

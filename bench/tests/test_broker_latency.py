from __future__ import annotations

import time

import pytest

from ev_bench.backlog import connect, declare, fleet_messages, wait_for_consumers
from ev_bench.broker_latency import _Receiver
from ev_messaging import EXCHANGE

pytestmark = pytest.mark.integration


def test_receiver_notes_only_the_watched_sensors(amqp_url: str) -> None:
    declare(amqp_url)
    messages = fleet_messages(200, vehicles=4, seed=1, id_prefix="w_")
    receiver = _Receiver(amqp_url, ["w_0001", "w_0003"])
    receiver.start()
    try:
        wait_for_consumers(amqp_url, 1)
        # Not publish_bare: it waits for a queue depth the receiver keeps at zero. Confirmed and
        # mandatory, so a message the broker did not take fails here, not as a missing arrival.
        connection = connect(amqp_url)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for key, body in messages:
                channel.basic_publish(EXCHANGE, key, body, mandatory=True)
        finally:
            connection.close()
        deadline = time.monotonic() + 30
        while len(receiver.arrivals) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.stop()
    assert receiver.failure is None
    assert len(receiver.arrivals) == 100  # 2 of 4 vehicles x 10 types x 5 ticks
    assert {key[0] for key in receiver.arrivals} == {"w_0001", "w_0003"}

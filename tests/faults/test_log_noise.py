"""What an operator reads from the consumer's log over a first start and a broker blip.

A first start (the queue-depth poller racing the consumer's declarations) logs no warning; a
broker that refuses connections for a few seconds is one WARNING line from the consumer and at
most one from the poller, each saying why, without a traceback or any ERROR line of pika's.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.faults.forwarder import Forwarder
from tests.faults.support import Consumers, amqp_via
from tests.support import free_port, poll_until, wait_until

REFUSED_S = 3.0

pytestmark = pytest.mark.integration


def test_a_first_start_and_a_broker_blip_are_a_few_plain_lines(
    amqp_url: str, consumers: Consumers
) -> None:
    with Forwarder(5672) as link:
        consumer = consumers.start(
            RABBITMQ_URLS=amqp_via(amqp_url, link.port),
            METRICS_PORT=str(free_port()),
            METRICS_QUEUE_POLL_S="0.2",
            LOG_FORMAT="text",
        )
        wait_until(consumer.logged("consumer connected"), 30, "the consumer connected")
        # A few polls, some of them possibly before the consumer declared the queues.
        assert not poll_until(consumer.logged("WARNING"), 1.0), consumer.tail()
        started = consumer.output()

        link.refuse()
        time.sleep(REFUSED_S)  # the outage's length is the fault, not a readiness wait
        link.accept()
        wait_until(consumer.logged("broker back"), 30, "a reconnect")
        wait_until(consumer.logged("queue depths available again"), 30, "the poller back")
        assert consumer.alive, consumer.tail()
        consumers.stop_all()  # before the forwarder closes: that would be a second blip
    blip = consumer.output()[len(started) :]

    assert re.findall(r" (WARNING|ERROR|CRITICAL) ", started) == [], started
    assert "Traceback" not in blip, blip
    assert re.findall(r" (ERROR|CRITICAL) ", blip) == [], blip
    warnings = [line.split(" WARNING ", 1)[1] for line in blip.splitlines() if " WARNING " in line]
    # One line from the consumer, one from the queue-depth poller (its own connection).
    loggers = sorted(line.split(":", 1)[0] for line in warnings)
    assert loggers == ["ev_consumer.queue_poller", "ev_messaging.consumer"], blip
    for line in warnings:  # each says why
        assert re.search(r"(unavailable: |interrupted \()\w", line), line

"""Refusals only a human can fix end the consumer with status 2 and one clear line, and lose
nothing: a retry loop would look alive while doing nothing, and requeueing would push good
messages towards the delivery limit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ev_messaging import routing_key
from tests.faults.broker import BrokerAdmin
from tests.faults.malformed import Fuzzed, Generator, encode
from tests.faults.support import Consumers, RedisServer, publish
from tests.support import queue_depth

pytestmark = pytest.mark.integration


def test_a_vhost_without_configure_permission_exits_2(
    vhost: str, broker_admin: BrokerAdmin, consumers: Consumers
) -> None:
    broker_admin.set_permissions(vhost, "guest", configure="^$", write=".*", read=".*")
    consumer = consumers.start()
    assert consumer.wait(30) == 2
    assert "RabbitMQ refused the credentials or permissions" in consumer.output()
    assert "ACCESS_REFUSED" in consumer.output()


def test_redis_refusing_the_credentials_exits_2_and_keeps_the_message(
    amqp_url: str, consumers: Consumers, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path, password="not-the-consumers")
    try:
        fields = Generator(seed=3, now=datetime.now(UTC)).reading()
        queue = routing_key(fields["sensor_type"])
        publish(amqp_url, [Fuzzed(queue, encode(fields), "valid")])
        consumer = consumers.start(REDIS_HOST="127.0.0.1", REDIS_PORT=str(server.port))
        assert consumer.wait(30) == 2
        assert "Redis refused the credentials or permissions" in consumer.output()
        assert queue_depth(amqp_url, queue) == 1  # back in its queue, neither acked nor moved
    finally:
        server.close()

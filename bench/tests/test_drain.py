from __future__ import annotations

import pytest

from ev_bench.backlog import connect, fleet_messages, publish_bare, queue_counts, topology
from ev_bench.drain import drain_noop

pytestmark = pytest.mark.integration


def test_drain_noop_acknowledges_the_whole_backlog(amqp_url: str) -> None:
    publish_bare(amqp_url, fleet_messages(1200, vehicles=5, seed=1, id_prefix="t_"))
    per_s, cpu = drain_noop(amqp_url, topology().queues, 1200, ack_every=500)
    assert per_s > 0
    assert "client" in cpu.shares
    connection = connect(amqp_url)
    try:
        channel = connection.channel()
        assert queue_counts(channel, topology().queues) == (0, 0)
        # Nothing left unacknowledged either: a fresh consumer gets nothing.
        assert channel.basic_get(topology().queues[0], auto_ack=True) == (None, None, None)
    finally:
        connection.close()

from __future__ import annotations

import time

import pika
import pytest

from ev_messaging import AmqpSettings, TopologySettings, routing_key
from ev_messaging.link import connect

pytestmark = pytest.mark.integration


def test_frames_waiting_to_be_written_go_out_as_one_buffer(
    settings: AmqpSettings, topology: TopologySettings, broker
) -> None:
    """pika buffers each frame apart; the link joins them so one system call sends them all.

    Reaches into pika's transport as the link does: if a pika release renames it, this fails
    and says why the publisher got slower."""
    confirmed: list[int] = []
    link = connect(
        settings,
        topology,
        lambda tag, _multiple, _acked: confirmed.append(tag),
        lambda *_returned: None,
        time.monotonic() + 10,
    )
    try:
        properties = pika.BasicProperties(delivery_mode=2)
        for i in range(3):
            link.publish("ev.sensors", routing_key("battery"), str(i).encode(), properties)
        buffers = link._connection._transport._tx_buffers
        assert len(buffers) == 9  # method, header and body frame of each message
        expected = b"".join(buffers)
        link._coalesce_output()
        assert list(buffers) == [expected]
        deadline = time.monotonic() + 10
        while max(confirmed, default=0) < 3 and time.monotonic() < deadline:
            link.pump(0.1)
    finally:
        link.close()
    assert max(confirmed) == 3
    broker.wait_for(lambda: broker.depth(routing_key("battery")) == 3, what="3 messages queued")

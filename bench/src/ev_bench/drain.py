"""The ingest ceiling: a pika consumer that does nothing but acknowledge.

Same client library, same queues (the product's quorum queues, one consumer per type queue on one
channel), same prefetch and batch acknowledgement as the real consumer's defaults; so the ratio of
the real consumer to this is what validation, Redis and the runner cost, not what the broker does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from ev_bench.backlog import connect
from ev_bench.cpu import CpuMeter, CpuShares
from ev_bench.errors import BenchError
from ev_bench.stats import rate

PREFETCH = 1000
ACK_EVERY = 500


class _Acker:
    """Counts deliveries and acknowledges every ``ack_every`` of them with one multiple-ack."""

    def __init__(self, ack_every: int, meter: CpuMeter) -> None:
        self.count = 0
        self.first_at = 0.0
        self.last_tag = 0
        self._ack_every = ack_every
        self._meter = meter

    def on_message(self, channel: Any, method: Any, _properties: Any, _body: bytes) -> None:
        if not self.count:
            self.first_at = time.perf_counter()
            self._meter.start()
        self.count += 1
        self.last_tag = method.delivery_tag
        if self.count % self._ack_every == 0:
            channel.basic_ack(delivery_tag=self.last_tag, multiple=True)


def drain_noop(
    url: str,
    queues: Sequence[str],
    expected: int,
    *,
    prefetch: int = PREFETCH,
    ack_every: int = ACK_EVERY,
    timeout: float = 120.0,
) -> tuple[float, CpuShares]:
    """Consume and ack ``expected`` messages: their rate from first delivery to the last ack,
    and the CPU used meanwhile."""
    connection = connect(url)
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=prefetch)
        meter = CpuMeter.with_servers({"client": [os.getpid()]})
        acker = _Acker(ack_every, meter)
        for queue in queues:
            channel.basic_consume(queue, acker.on_message)
        deadline = time.monotonic() + timeout
        while acker.count < expected:
            if time.monotonic() > deadline:
                raise BenchError(f"no-op drain got {acker.count} of {expected} in {timeout:g}s")
            connection.process_data_events(time_limit=0.1)
        channel.basic_ack(delivery_tag=acker.last_tag, multiple=True)
        elapsed = time.perf_counter() - acker.first_at
        return rate(acker.count, elapsed), meter.stop()
    finally:
        connection.close()

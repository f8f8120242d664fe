"""The latency ceiling of stage 3: publish -> delivery to a no-op consumer, at the same rate.

The same publisher (the simulator through the product's confirming publisher) at the same rate
into a fresh vhost of the same quorum queues, drained by a pika consumer that only notes when each
sampled reading arrives and acknowledges. What the pipeline adds on top of this (batching,
validation, Redis, the API's push) is the consumer's and the API's; this part is the broker's and
the machine's.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from ev_bench.backlog import connect, declare, topology, wait_for_consumers
from ev_bench.context import RunContext
from ev_bench.e2e_publisher import publish_at_rate
from ev_bench.errors import BenchError
from ev_bench.samples import SETTLE_S, VEHICLES, Key, latencies_ms, reading_key, watched_count
from ev_bench.stats import Distribution
from ev_simulator import sensor_ids

_ID_START = len(b'{"sensor_id":"')


class _Receiver(threading.Thread):
    """A no-op consumer on its own connection and thread; notes the watched sensors' arrivals."""

    def __init__(self, amqp_url: str, watched: list[str]) -> None:
        super().__init__(name="broker-latency", daemon=True)
        self.arrivals: dict[Key, int] = {}
        self.failure: BaseException | None = None
        self._url = amqp_url
        self._watched = {sensor_id.encode() for sensor_id in watched}
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)

    def _on_message(self, channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        at = time.monotonic_ns()
        if body[_ID_START : body.find(b'"', _ID_START)] in self._watched:
            reading = json.loads(body)
            key = reading_key(reading["sensor_id"], reading["sensor_type"], reading["timestamp"])
            self.arrivals[key] = at
        channel.basic_ack(delivery_tag=method.delivery_tag)

    def run(self) -> None:
        try:
            connection = connect(self._url)
            try:
                channel = connection.channel()
                channel.basic_qos(prefetch_count=1000)
                for queue in topology().queues:
                    channel.basic_consume(queue, self._on_message)
                while not self._stopping.is_set():
                    connection.process_data_events(time_limit=0.05)
            finally:
                connection.close()
        except Exception as exc:  # reported by the caller, after the thread ends
            self.failure = exc


def broker_latency(
    ctx: RunContext, *, per_s: float, duration: float, label: str
) -> Distribution | None:
    """Publish -> no-op delivery latency at ``per_s`` for ``duration`` seconds (None: no data)."""
    amqp_url = ctx.sandbox.vhost(f"broker-{label}")
    declare(amqp_url)
    watched = sensor_ids(VEHICLES, f"b{label}_")[: watched_count(per_s, VEHICLES)]
    receiver = _Receiver(amqp_url, watched)
    receiver.start()
    try:
        wait_for_consumers(amqp_url, 1)
        result = publish_at_rate(
            amqp_url=amqp_url,
            per_s=per_s,
            count=max(1, round(per_s * duration)),
            vehicles=VEHICLES,
            id_prefix=f"b{label}_",
            watched=watched,
            out=ctx.log_dir / f"broker-{label}.json",
            log=ctx.log_dir / f"broker-publisher-{label}.log",
        )
        records = result["records"]
        deadline = time.monotonic() + SETTLE_S
        while len(receiver.arrivals) < len(records) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.stop()
        ctx.sandbox.drop_vhost(amqp_url)
    if receiver.failure is not None:
        raise BenchError(f"the no-op receiver failed: {receiver.failure!r}")
    found, _missing = latencies_ms(records, receiver.arrivals)
    return Distribution.of(found) if found else None

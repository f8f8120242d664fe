"""``python -m ev_bench.naive``: the seed's straightforward consumer, for contrast.

Per message: validate, store with one Redis round trip (the product's own atomic write script,
through ``ReadingWriter.store``), then one ``basic.ack``. Same validation and storage as the real
consumer, none of its batching: the difference between the two is what batching buys.
Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import pika
import redis

from ev_messaging import TopologySettings, sensor_type_from_routing_key
from ev_schemas import InvalidReading, ReadingValidator, default_catalogue
from ev_storage import ReadingWriter, StorageSettings

#: The seed's kind of setting: a small window, so one slow message does not hold many.
DEFAULT_PREFETCH = 100


class NaiveConsumer:
    """One delivery at a time: parse, store (one round trip), ack (one frame)."""

    def __init__(self, validator: ReadingValidator, writer: ReadingWriter) -> None:
        self._validator = validator
        self._writer = writer
        self.stopping = False

    def on_message(self, channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        expected = sensor_type_from_routing_key(method.routing_key)
        try:
            reading = self._validator.parse(body, expected_type=expected)
        except InvalidReading:
            # The benchmark's traffic is valid; the real consumer moves such messages aside.
            channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
            return
        self._writer.store(reading)
        channel.basic_ack(delivery_tag=method.delivery_tag)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key-prefix", required=True)
    parser.add_argument("--prefetch", type=int, default=DEFAULT_PREFETCH)
    args = parser.parse_args(argv)

    catalogue = default_catalogue()
    client = redis.Redis.from_url(args.redis_url)
    consumer = NaiveConsumer(
        ReadingValidator(catalogue=catalogue),
        ReadingWriter(client, StorageSettings(key_prefix=args.key_prefix)),
    )

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        consumer.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    connection = pika.BlockingConnection(pika.URLParameters(args.amqp_url))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=args.prefetch)
        for queue in TopologySettings.from_types(catalogue).queues:
            channel.basic_consume(queue, consumer.on_message)
        while not consumer.stopping:
            connection.process_data_events(time_limit=0.1)
    finally:
        if connection.is_open:
            connection.close()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

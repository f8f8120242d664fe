"""``python -m ev_bench.e2e_publisher``: the simulator at a fixed rate, noting when each sampled
sensor's reading was published.

The product's own load path: ``ev_simulator.run`` with its token bucket, through the product's
``ev_messaging.Publisher`` (persistent, mandatory, pipelined confirms). A thin wrapper notes
``time.monotonic_ns()`` (system-wide on Linux, so comparable with the harness's clock) just before
each publish of a sampled sensor. Writes one JSON object: what was sent and the records.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ev_bench.backlog import topology
from ev_bench.errors import BenchError
from ev_messaging import AmqpSettings, Publisher, PublisherStats
from ev_simulator import Simulation, run

_ID_START = len(b'{"sensor_id":"')


class RecordingPublisher:
    """Publishes through ``publisher``; records (sensor_id, type, ms, publish ns) of samples."""

    def __init__(self, publisher: Publisher, sampled: set[str]) -> None:
        self._publisher = publisher
        self._sampled = {sensor_id.encode() for sensor_id in sampled}
        self._published: list[tuple[bytes, int]] = []

    def publish(self, routing_key: str, body: bytes) -> None:
        # Fleet bodies start with the sensor id: a slice, not a JSON parse, per message.
        sensor_id = body[_ID_START : body.find(b'"', _ID_START)]
        if sensor_id in self._sampled:
            self._published.append((body, time.monotonic_ns()))
        self._publisher.publish(routing_key, body)

    @property
    def records(self) -> list[tuple[str, str, str, int]]:
        """(sensor_id, sensor_type, timestamp as published, publish ns) of each sample."""
        result = []
        for body, at_ns in self._published:
            reading = json.loads(body)
            result.append(
                (reading["sensor_id"], reading["sensor_type"], reading["timestamp"], at_ns)
            )
        return result

    def flush(self, timeout: float | None = None) -> None:
        self._publisher.flush(timeout)

    def sleep(self, seconds: float) -> None:
        self._publisher.sleep(seconds)

    @property
    def stats(self) -> PublisherStats:
        return self._publisher.stats


def publish_at_rate(
    *,
    amqp_url: str,
    per_s: float,
    count: int,
    vehicles: int,
    id_prefix: str,
    watched: Sequence[str],
    out: Path,
    log: Path,
) -> dict[str, Any]:
    """Run this module as a process: ``count`` messages at ``per_s``; its JSON result
    (``sent``, ``elapsed_s``, ``records`` of the watched sensors)."""
    argv = [
        sys.executable, "-m", "ev_bench.e2e_publisher", "--amqp-url", amqp_url,
        "--rate", str(per_s), "--count", str(count), "--vehicles", str(vehicles),
        "--id-prefix", id_prefix, "--sample", ",".join(watched), "--out", str(out),
    ]  # fmt: skip
    with log.open("wb") as output:
        done = subprocess.run(  # noqa: S603 - our own fixed argv
            argv, stdout=output, stderr=subprocess.STDOUT, timeout=3 * count / per_s + 60
        )
    if done.returncode != 0 or not out.exists():
        raise BenchError(f"the e2e publisher exited {done.returncode}; see {log}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--vehicles", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--id-prefix", required=True)
    parser.add_argument("--sample", required=True, help="comma-separated sensor ids")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    simulation = Simulation(
        vehicles=args.vehicles,
        seed=args.seed,
        rate=args.rate,
        count=args.count,
        id_prefix=args.id_prefix,
    )
    fleet = simulation.fleet()
    settings = AmqpSettings(urls=(args.amqp_url,), client_name="ev-bench-e2e")
    with Publisher(settings, topology=topology()) as publisher:
        recording = RecordingPublisher(publisher, set(args.sample.split(",")))
        report = run(simulation, recording, fleet=fleet)
    args.out.write_text(
        json.dumps(
            {
                "sent": report.sent,
                "confirmed": report.confirmed,
                "elapsed_s": report.elapsed_s,
                "error": report.error,
                "records": recording.records,
            }
        )
    )
    return 0 if report.error is None else 1


if __name__ == "__main__":
    sys.exit(main())

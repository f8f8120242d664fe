"""``ev-simulator``: drive a simulated fleet into RabbitMQ and report what was published.

Options override the environment (see :mod:`ev_simulator.settings`). SIGINT and SIGTERM stop the
run cleanly: publishing stops, outstanding confirms are awaited, the report is printed. A second
signal aborts at once. Exit status: 0 when everything sent was confirmed, 1 otherwise (broker
unreachable, credentials refused, exchange missing, messages returned), 2 bad configuration,
including a broker whose TLS certificate does not verify.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ev_messaging import (
    AuthenticationFailed,
    MessagingError,
    Publisher,
    TlsVerificationFailed,
    safe_url,
)
from ev_service import ConfigurationError, configure_logging, load_settings
from ev_service.amqp_env import RABBITMQ
from ev_simulator.__about__ import __version__
from ev_simulator.message import BAD_KINDS
from ev_simulator.runner import run
from ev_simulator.sensors import SIMULATED_TYPES
from ev_simulator.settings import SharedSettings, SimulatorSettings

logger = logging.getLogger("ev_simulator")
#: Options that override variables shared with the consumer rather than SIMULATOR_* ones.
SHARED_OPTIONS = ("rabbitmq_urls", "log_level")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ev-simulator",
        description="Simulate a fleet of electric vehicles publishing telemetry to RabbitMQ.",
    )
    add = parser.add_argument
    add("--version", action="version", version=f"%(prog)s {__version__}")
    add("--vehicles", type=int, help="fleet size (default 10)")
    add("--rate", type=float, help="messages per second, 0 = as fast as possible (default 100)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--duration", type=float, help="stop after this many seconds")
    limit.add_argument("--count", type=int, help="stop after this many messages")
    add("--seed", type=int, help="random seed; the same seed gives the same fleet and data")
    add("--types", help=f"comma-separated sensor types, or all: {','.join(SIMULATED_TYPES)}")
    add("--bad-ratio", type=float, help="fraction of bad or tricky messages (default 0)")
    add("--bad-kinds", help=f"comma-separated kinds, or all (default): {','.join(BAD_KINDS)}")
    add("--alt-unit-ratio", type=float, help="fraction of vehicles using alternative units")
    add("--id-prefix", help="sensor id prefix (default ev_, giving ev_0001, ...)")
    add("--tick", type=float, help="simulated seconds per tick (default: planned)")
    add(
        "--declare-topology",
        action="store_const",
        const=True,
        help="declare the exchanges and queues first (idempotent; same as the consumer's)",
    )
    add("--amqp-url", dest="rabbitmq_urls", help="broker URL(s), comma-separated; overrides env")
    add("--max-in-flight", type=int, help="unconfirmed messages allowed (default 1000)")
    add("--flush-timeout", type=float, help="seconds to wait for the last confirms (default 60)")
    add("--report-json", help="also write the report as JSON to this path")
    add("--log-level", help="DEBUG, INFO (default), WARNING, ...")
    return parser


def _shared_settings(
    rabbitmq_urls: str | None = None, log_level: str | None = None
) -> SharedSettings:
    """The shared variables, with ``--amqp-url`` and ``--log-level`` in place of theirs."""
    fields: dict[str, Any] = {} if log_level is None else {"log_level": log_level}
    if rabbitmq_urls is not None:
        fields["rabbitmq"] = RABBITMQ.load({**os.environ, "RABBITMQ_URLS": rabbitmq_urls})
    return load_settings(SharedSettings, overrides=fields)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop``; a second one exits at once. Restores the old handlers."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        logger.info("%s: stopping after the outstanding confirms", signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {name: value for name, value in vars(args).items() if value is not None}
    shared = {name: overrides.pop(name) for name in SHARED_OPTIONS if name in overrides}
    try:
        settings = load_settings(
            SimulatorSettings, overrides={**overrides, "shared": _shared_settings(**shared)}
        )
        simulation = settings.simulation()
        fleet = simulation.fleet()
        amqp = settings.amqp()
    except ConfigurationError as exc:
        print(exc.line("ev-simulator"), file=sys.stderr)
        return 2
    configure_logging(settings.shared.log_level, settings.shared.log_format)
    stop = threading.Event()
    topology = settings.topology() if settings.declare_topology else None
    publisher = Publisher(amqp, max_in_flight=settings.max_in_flight, topology=topology)
    try:
        with _stop_on_signals(stop):
            publisher.connect()
            logger.info(
                "publishing to %s: %d vehicles, seed %d, %s msg/s",
                ", ".join(safe_url(url) for url in amqp.broker_urls),
                simulation.vehicles,
                simulation.seed,
                simulation.rate or "unlimited",
            )
            report = run(simulation, publisher, stop=stop, fleet=fleet)
    except TlsVerificationFailed as exc:
        # Configuration, like an invalid setting: one plain line, never plain AMQP instead.
        print(f"ev-simulator: {exc}", file=sys.stderr)
        return 2
    except AuthenticationFailed as exc:
        print(
            f"ev-simulator: {exc}. Check RABBITMQ_USER/RABBITMQ_PASS/RABBITMQ_VHOST (a local "
            "RabbitMQ usually has only guest/guest) or --amqp-url.",
            file=sys.stderr,
        )
        return 1
    except MessagingError as exc:
        print(f"ev-simulator: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        publisher.close()
    print(report.summary(), flush=True)
    if settings.report_json is not None:
        report.write_json(settings.report_json)
    return 0 if report.complete else 1

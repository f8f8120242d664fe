"""``ev-consumer`` / ``python -m ev_consumer``: run the consumer until SIGTERM or SIGINT.

Exit status 0 after a stop signal, 2 when something only a human can fix (refused credentials or
permissions, conflicting queue arguments, invalid configuration), 1 when no seed node of a Redis
Cluster answers at start-up (a supervisor starts it again; a single Redis is waited for instead).

``--check`` runs no consumer: it exits 0 when the heartbeat file of the running one is fresher
than ``CONSUMER_HEARTBEAT_MAX_AGE_S``, 1 otherwise, with one line saying which (a container's
health check).

``--rebuild-catalogue`` runs no consumer either: it indexes every stored history in the fleet
catalogue (after upgrading from a version without it, or changing the number of catalogue shards)
and exits 0, 1 when Redis cannot be reached, 2 for an invalid configuration. Consumers may run
meanwhile.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    # Importing the service takes a second or two; a stop signal meanwhile must end the process
    # as cleanly as a later one (status 0), not kill it: note it now, act on it once wired.
    requested: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        requested.append(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, note)
    parser = argparse.ArgumentParser(
        prog="ev-consumer", description="RabbitMQ -> validate -> Redis, until SIGTERM or SIGINT."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if the running consumer's heartbeat is fresh, 1 otherwise",
    )
    parser.add_argument(
        "--rebuild-catalogue",
        action="store_true",
        help="index every stored history in the fleet catalogue, then exit",
    )
    args = parser.parse_args(argv)
    if args.check:
        return check()
    if args.rebuild_catalogue:
        return rebuild_catalogue()
    from ev_consumer.service import run

    return run(stop_requested=bool(requested))


def check() -> int:
    """The health check: 0 when the heartbeat is fresh, else 1 (never 2: containers reserve it)."""
    # Only the settings and the file: no service imports, so the check is quick.
    from ev_consumer.heartbeat import check as check_heartbeat
    from ev_consumer.settings import ConsumerSettings
    from ev_service import ConfigurationError, load_settings

    try:
        settings = load_settings(ConsumerSettings)
    except ConfigurationError as exc:
        print(exc.line("ev-consumer"), file=sys.stderr)
        return 1
    result = check_heartbeat(
        settings.consumer_heartbeat_file, settings.consumer_heartbeat_max_age_s
    )
    print(result.line, file=sys.stdout if result.alive else sys.stderr)
    return 0 if result.alive else 1


def rebuild_catalogue() -> int:
    """Index the stored histories in the fleet catalogue (idempotent, safe beside consumers)."""
    from ev_consumer.settings import ConsumerSettings
    from ev_service import ConfigurationError, load_settings
    from ev_storage import ReadingWriter, StorageError, StorageUnavailable

    try:
        settings = load_settings(ConsumerSettings)
    except ConfigurationError as exc:
        print(exc.line("ev-consumer"), file=sys.stderr)
        return 2
    try:
        client = settings.redis.sync_client()
        try:
            indexed = ReadingWriter(client, settings.storage()).catalogue.rebuild()
        finally:
            client.close()
    except StorageUnavailable as exc:
        print(f"ev-consumer: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"ev-consumer: {exc}", file=sys.stderr)
        return 2
    print(f"ev-consumer: {indexed} histories indexed in the fleet catalogue")
    return 0


if __name__ == "__main__":
    sys.exit(main())

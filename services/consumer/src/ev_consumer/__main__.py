"""``ev-consumer`` / ``python -m ev_consumer``: run the consumer until SIGTERM or SIGINT.

Exit status 0 after a stop signal, 2 when something only a human can fix (refused credentials or
permissions, conflicting queue arguments, invalid configuration).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main() -> int:
    # Importing the service takes a second or two; a stop signal meanwhile must end the process
    # as cleanly as a later one (status 0), not kill it: note it now, act on it once wired.
    requested: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        requested.append(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, note)
    from ev_consumer.service import run

    return run(stop_requested=bool(requested))


if __name__ == "__main__":
    sys.exit(main())

"""Liveness without an HTTP port: a heartbeat file and the ``--check`` that reads it.

A small thread stamps the file's modification time with the wall-clock time at which the
consumer's run loop last went round (``BatchConsumer.active_at``), every few seconds. The stamp is
the loop's, not the thread's: a stuck loop leaves the file ageing even though the thread lives.
``python -m ev_consumer --check`` compares the file's age with a maximum, like arq's health check
key and ``--check``.

A file rather than a Redis key: liveness must not depend on Redis being up. A consumer waiting for
Redis or the broker is alive (restarting it would not help); whether it can do its work is
readiness, which its metrics and the queues show.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Longest pause between two stamps; shorter when the maximum age is small.
MAX_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``--check`` found: whether the consumer is alive, and one line saying why."""

    alive: bool
    line: str


def check(path: Path, max_age: float, now: float | None = None) -> CheckResult:
    """Whether the heartbeat at ``path`` is at most ``max_age`` seconds old (``now``: wall time)."""
    now = time.time() if now is None else now
    try:
        stamped = path.stat().st_mtime
    except FileNotFoundError:
        return CheckResult(False, f"ev-consumer: no heartbeat file at {path} (not running?)")
    except OSError as exc:
        return CheckResult(False, f"ev-consumer: cannot read the heartbeat file {path}: {exc}")
    age = max(0.0, now - stamped)
    if age > max_age:
        return CheckResult(
            False,
            f"ev-consumer: heartbeat {path} is {age:.1f} s old (max {max_age:g} s): "
            "the run loop is stuck or the process is gone",
        )
    return CheckResult(True, f"ev-consumer: alive, heartbeat {age:.1f} s old")


class Heartbeat:
    """Stamps ``path`` with the last time ``active_at()`` (a ``time.monotonic()``) reports, in
    wall-clock time, every ``interval`` seconds; removes the file when stopped."""

    def __init__(self, path: Path, active_at: Callable[[], float], *, max_age: float) -> None:
        self.path = path
        self.interval = min(MAX_INTERVAL, max_age / 4)
        self._active_at = active_at
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    def beat(self) -> None:
        """Stamp the file once (creating it if needed) with the loop's last activity."""
        stamp = time.time() - max(0.0, time.monotonic() - self._active_at())
        try:
            self.path.touch()
            os.utime(self.path, (stamp, stamp))
        except OSError as exc:
            # Keep going: a full disk must not stop consuming, and --check will say unhealthy.
            if not self._warned:
                log.warning("cannot write the heartbeat file %s: %s", self.path, exc)
            self._warned = True
        else:
            self._warned = False

    def start(self) -> None:
        self.beat()
        self._thread = threading.Thread(target=self._run, name="ev-consumer-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop stamping and remove the file: a stopped consumer is not alive."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @contextlib.contextmanager
    def running(self) -> Iterator[Heartbeat]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

"""The consumer's staleness sweep, on a timer beside the batch loop (docs/alarms.md).

Every consumer runs one: ``stale.lua`` judges each sensor atomically, so several sweeping at
once raise one episode per silence, and the sweep goes on while any consumer lives. A Redis
error skips a round (logged); the next one catches up, since staleness is judged afresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from ev_consumer.alarm_rules import AlarmRulesSource, log_transition
from ev_storage import ReadingWriter, StorageError
from ev_storage.staleness import StalenessSweep

log = logging.getLogger("ev_consumer")

#: Seconds between sweeps: a silent sensor is reported within stale_after plus this (and the
#: sweep's own time).
SWEEP_S = 2.0


class StaleSweeper:
    """Runs :class:`StalenessSweep` over the stale rules in force every ``interval_s``."""

    def __init__(
        self,
        sweep: StalenessSweep,
        rules: AlarmRulesSource,
        writer: ReadingWriter,
        *,
        interval_s: float = SWEEP_S,
    ) -> None:
        self._sweep, self._rules, self._writer = sweep, rules, writer
        self._interval_s = interval_s
        self._stop = threading.Event()
        #: Transitions made so far, by kind (read by tests and metrics).
        self.transitions: dict[str, int] = {}

    def run_once(self) -> None:
        """One round: refresh the rules, sweep, log what changed."""
        try:
            self._rules.refresh(self._writer)
            result = self._sweep.sweep(self._rules.stale_rules)
        except StorageError as exc:
            log.warning("staleness sweep skipped: %s", exc)
            return
        for transition in result.transitions:
            self.transitions[transition.kind] = self.transitions.get(transition.kind, 0) + 1
            log_transition(transition)

    @contextlib.contextmanager
    def running(self) -> Iterator[StaleSweeper]:
        """Sweep in a daemon thread while the block runs."""

        def loop() -> None:
            while not self._stop.wait(self._interval_s):
                self.run_once()

        thread = threading.Thread(target=loop, name="ev-stale-sweep", daemon=True)
        self._stop.clear()
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)

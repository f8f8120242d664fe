"""One fault scenario from start to verdict: faults and recoveries noted as they happen, then
drain, stop the consumers, read everything back, record the figures, and check them exactly."""

from __future__ import annotations

import time
from typing import Any

from ev_messaging import INVALID_QUEUE, UNROUTED_QUEUE, TopologySettings
from ev_schemas import default_catalogue
from tests.faults.accounting import Expectation, Figures, account, assert_exact, observe
from tests.faults.live import RECOVERY_READINGS, LiveCounter
from tests.faults.report import FaultReport
from tests.faults.support import Consumers
from tests.support import poll_until, queue_depth, wait_until

TYPE_QUEUES = TopologySettings.from_types(default_catalogue()).queues


class Scenario:
    """Collects a scenario's faults and ends it with :meth:`finish`."""

    def __init__(
        self,
        name: str,
        report: FaultReport,
        consumers: Consumers,
        live: LiveCounter,
        *,
        redis_url: str,
        key_prefix: str,
        amqp_url: str,
    ) -> None:
        self.name = name
        self.report = report
        self.consumers = consumers
        self.live = live
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.amqp_url = amqp_url
        self.fault_ends: list[float] = []
        self.notes: dict[str, Any] = {}
        #: For faults that are messages, not moments (malformed, poison): how many.
        self.fault_messages: int | None = None
        self.started = time.monotonic()

    def fault_over(self) -> float:
        """Note that a fault just ended (restart, link restored); the recovery time runs from
        here until the consumers stored more than a batch again (see LiveCounter.recovery)."""
        moment = time.monotonic()
        self.fault_ends.append(moment)
        return moment

    def recovered(self, timeout: float = 60.0) -> None:
        """Wait until the last fault's recovery time is known, before the next fault."""
        if self.fault_ends:
            last = self.fault_ends[-1]
            wait_until(lambda: self.live.recovery(last) is not None, timeout, "a recovery")

    def drained(self, expected: Expectation, timeout: float) -> bool:
        """Wait until everything expected has arrived (or ``timeout``); whether it did."""

        def arrived() -> bool:
            return (
                self.live.count >= expected.stored_total
                and queue_depth(self.amqp_url, INVALID_QUEUE) >= expected.invalid
                and queue_depth(self.amqp_url, UNROUTED_QUEUE) >= expected.unrouted
            )

        return poll_until(arrived, timeout, interval=0.2)

    def finish(
        self, expected: Expectation, *, drain_timeout: float = 60.0, record: bool = True
    ) -> Figures:
        """Drain, SIGTERM every consumer (exit 0 within 10 s each), then the exact verdict;
        ``record`` puts the figures in the report."""
        drained = self.drained(expected, drain_timeout)
        self.consumers.wait_ready()
        exits = self.consumers.stop_all(timeout=10)
        seen = observe(
            self.redis_url, self.key_prefix, self.amqp_url, expected.sensors, TYPE_QUEUES
        )
        live = self.live.count
        figures = account(self.name, expected, seen, live=live)
        figures.faults = (
            len(self.fault_ends) if self.fault_messages is None else self.fault_messages
        )
        recoveries = [self.live.recovery(moment) for moment in self.fault_ends]
        figures.recovery_s = [seconds for seconds in recoveries if seconds is not None]
        figures.notes.update(self.notes)
        figures.notes["sigterm_exit_s"] = round(max(exits, default=0.0), 3)
        figures.notes["duration_s"] = round(time.monotonic() - self.started, 1)
        if record:
            self.report.record(figures)
        assert self.live.error is None, self.live.error
        assert drained, f"not drained in {drain_timeout:g} s: {figures}"
        assert_exact(figures, expected, seen, live=live)
        # A recovery can only be seen where enough work was left after the fault; where it
        # was, the consumers must have done it (the exact totals say they did, eventually).
        left = [expected.stored_total - self.live.count_at(moment) for moment in self.fault_ends]
        unseen = [
            n
            for n, seconds in zip(left, recoveries, strict=True)
            if seconds is None and n >= RECOVERY_READINGS
        ]
        assert not unseen, f"the consumers did not work again after a fault: {recoveries}"
        return figures

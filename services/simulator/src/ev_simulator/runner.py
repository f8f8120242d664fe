"""Running a simulation: fleet traffic through a publisher, at a rate, until a count, time or stop.

Publishing rate and simulated time are independent. The simulated clock starts far enough in the
past that the planned run ends about now, and a message is never published before the wall clock
has reached its simulated time: the data always carries realistic timestamps and never trips the
consumer's future-skew check. An open-ended run starts now and so becomes a live fleet.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ev_messaging import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConfirmTimeout,
    PublishNacked,
    Unroutable,
)
from ev_schemas import utc_now
from ev_simulator.errors import MissingExchange
from ev_simulator.fleet import Fleet
from ev_simulator.message import BAD_KINDS, Kind
from ev_simulator.ratelimit import TokenBucket
from ev_simulator.report import Report, Tally
from ev_simulator.sensors import SIMULATED_TYPES

logger = logging.getLogger(__name__)

#: For planning the simulated start of an unthrottled timed run: more than one process publishes.
ASSUMED_MAX_RATE = 50_000.0
#: Sleep in slices this long so a stop request is noticed promptly.
_WAIT_SLICE_S = 0.1
_PROGRESS_EVERY_S = 10.0
#: The reason ev_messaging.Unroutable gives when the exchange is missing (not a routing problem).
_NO_EXCHANGE = "exchange not found"


class PublisherStatsLike(Protocol):
    @property
    def confirmed(self) -> int: ...
    @property
    def returned(self) -> int: ...
    @property
    def nacked(self) -> int: ...


class PublisherLike(Protocol):
    """What the runner needs of ``ev_messaging.Publisher``."""

    def publish(self, routing_key: str, body: bytes) -> None: ...
    def flush(self, timeout: float | None = None) -> None: ...
    def sleep(self, seconds: float) -> None: ...
    @property
    def stats(self) -> PublisherStatsLike: ...


@dataclass(frozen=True, slots=True)
class Simulation:
    """What to simulate and how much of it. ``rate`` 0 means as fast as possible; with neither
    ``count`` nor ``duration`` the run goes on until stopped. ``tick`` and ``start`` are planned
    from the rest when None (see :meth:`plan`)."""

    vehicles: int = 10
    seed: int = 1
    types: tuple[str, ...] = SIMULATED_TYPES
    rate: float = 100.0
    count: int | None = None
    duration: float | None = None
    bad_ratio: float = 0.0
    bad_kinds: tuple[Kind, ...] = BAD_KINDS
    alt_unit_ratio: float = 0.1
    id_prefix: str = "ev_"
    tick: float | None = None
    start: datetime | None = None
    flush_timeout: float = 60.0

    @property
    def per_tick(self) -> int:
        return self.vehicles * len(self.types)

    def planned_messages(self) -> int | None:
        """How many messages the run will publish at most; None when open-ended."""
        if self.count is not None:
            return self.count
        if self.duration is None:
            return None
        rate = self.rate if self.rate > 0 else ASSUMED_MAX_RATE
        return math.ceil(rate * self.duration)

    def plan(self, now: datetime) -> tuple[float, datetime]:
        """The tick and the simulated start.

        A bounded run ticks each second and starts in the past so that its last tick is about
        ``now``. An open-ended run starts one tick ago (so the first tick is due at once), with a
        tick long enough that, at ``rate``, simulated time keeps pace with the clock (the physics
        still steps at most 1 s).
        """
        planned = self.planned_messages()
        tick = self.tick
        if tick is None:
            tick = 1.0
            if planned is None and self.rate > 0:
                tick = max(1.0, round(self.per_tick / self.rate, 3))
        if self.start is not None:
            return tick, self.start
        if planned is None:
            return tick, now - timedelta(seconds=tick)
        ticks = math.ceil(planned / self.per_tick) + 1
        return tick, now - timedelta(seconds=ticks * tick)

    def fleet(self, now: datetime | None = None) -> Fleet:
        now = now or utc_now()
        tick, start = self.plan(now)
        return Fleet(
            self.vehicles,
            self.seed,
            self.types,
            start=start,
            tick=tick,
            bad_ratio=self.bad_ratio,
            bad_kinds=self.bad_kinds,
            alt_unit_ratio=self.alt_unit_ratio,
            id_prefix=self.id_prefix,
            now=now,
        )


def _wait(publisher: PublisherLike, seconds: float, stop: threading.Event) -> None:
    """Wait while serving the connection, in slices so that ``stop`` is noticed."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        publisher.sleep(min(left, _WAIT_SLICE_S))


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def run(
    simulation: Simulation,
    publisher: PublisherLike,
    *,
    stop: threading.Event | None = None,
    fleet: Fleet | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_ms: Callable[[], int] = _wall_ms,
) -> Report:
    """Publish the simulation's traffic through ``publisher``; a :class:`Report` of what went out.

    ``fleet`` defaults to ``simulation.fleet()``. Returns early, after flushing, when ``stop`` is
    set (e.g. by a signal handler). Broker failures end the run and are recorded in the report's
    ``error``; messages the broker returned or refused are logged and counted.
    """
    stop = stop or threading.Event()
    fleet = fleet or simulation.fleet()
    tally = Tally()
    bucket = TokenBucket(simulation.rate, clock=clock) if simulation.rate > 0 else None
    before = publisher.stats
    started = clock()
    deadline = None if simulation.duration is None else started + simulation.duration
    next_progress = started + _PROGRESS_EVERY_S
    wall_reached = wall_ms()
    sent, error, paced = 0, None, False
    try:
        for message in fleet.messages(simulation.count):
            now = clock()
            if stop.is_set() or (deadline is not None and now >= deadline):
                break
            if now >= next_progress:
                logger.info("%d messages sent, %.0f msg/s", sent, sent / (now - started))
                next_progress = now + _PROGRESS_EVERY_S
            if bucket is not None and (pause := bucket.take()):
                _wait(publisher, pause, stop)
            if message.sim_time_ms > wall_reached:
                wall_reached = wall_ms()
                if message.sim_time_ms > wall_reached:
                    if not paced:
                        logger.info("simulated time reached the clock: publishing in real time")
                        paced = True
                    _wait(publisher, (message.sim_time_ms - wall_reached) / 1000.0, stop)
                    wall_reached = message.sim_time_ms
            if stop.is_set():  # set while waiting
                break
            try:
                publisher.publish(message.routing_key, message.body)
            except (Unroutable, PublishNacked) as exc:  # about an earlier message; this one went
                _check_failure(exc)
            sent += 1
            tally.add(message)
        _flush(publisher, simulation.flush_timeout)
    except (BrokerUnavailable, AuthenticationFailed, ConfirmTimeout, MissingExchange) as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.error("run ended early: %s", error)
    after = publisher.stats
    return Report(
        seed=simulation.seed,
        vehicles=simulation.vehicles,
        types=simulation.types,
        sent=sent,
        confirmed=after.confirmed - before.confirmed,
        returned=after.returned - before.returned,
        nacked=after.nacked - before.nacked,
        elapsed_s=clock() - started,
        tally=tally,
        interrupted=stop.is_set(),
        error=error,
    )


def _check_failure(exc: Unroutable | PublishNacked) -> None:
    """Log a message the broker returned or refused; give up if the exchange itself is missing."""
    if isinstance(exc, Unroutable) and exc.reason == _NO_EXCHANGE:
        raise MissingExchange(
            f"exchange {exc.exchange!r} does not exist: start the consumer first, "
            "or publish with --declare-topology"
        ) from exc
    logger.warning("%s", exc)


def _flush(publisher: PublisherLike, timeout: float) -> None:
    """Flush until every message is confirmed; returned or refused ones are logged, not fatal."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            publisher.flush(max(deadline - time.monotonic(), 0.0))
            return
        except (Unroutable, PublishNacked) as exc:
            _check_failure(exc)

"""Running a simulation: simulated time, rate, limits, stopping, and what reaches RabbitMQ."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from ev_messaging import (
    UNROUTED_QUEUE,
    AmqpSettings,
    Publisher,
    TopologySettings,
    routing_key,
    sensor_type_from_routing_key,
)
from ev_schemas import to_epoch_ms
from ev_simulator.message import Kind
from ev_simulator.runner import Simulation, run
from ev_simulator.sensors import SIMULATED_TYPES

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Depths = Callable[[Iterable[str], int], dict[str, int]]


def test_a_counted_run_ends_about_now() -> None:
    simulation = Simulation(vehicles=4, count=4_000, bad_ratio=0.2)
    tick, start = simulation.plan(NOW)
    assert tick == 1.0
    assert NOW - timedelta(seconds=110) < start < NOW - timedelta(seconds=100)
    stamps = [message.sim_time_ms for message in simulation.fleet(NOW).messages(4_000)]
    assert max(stamps) <= to_epoch_ms(NOW)
    assert max(stamps) > to_epoch_ms(NOW) - 5_000


def test_a_timed_run_is_planned_from_its_rate() -> None:
    _, start = Simulation(vehicles=2, rate=200, duration=30).plan(NOW)
    assert start == NOW - timedelta(seconds=(6000 // 20 + 1))
    _, unthrottled = Simulation(vehicles=2, rate=0, duration=30).plan(NOW)
    assert unthrottled < start


def test_an_open_ended_run_is_live() -> None:
    tick, start = Simulation(vehicles=5, rate=20).plan(NOW)
    assert start == NOW - timedelta(seconds=2.5)
    assert tick == 2.5  # 50 readings per tick at 20 msg/s: simulated time keeps pace
    assert Simulation(vehicles=1, rate=100).plan(NOW)[0] == 1.0


def test_explicit_tick_and_start_win() -> None:
    start = NOW - timedelta(days=1)
    assert Simulation(count=10, tick=0.5, start=start).plan(NOW) == (0.5, start)


@pytest.fixture
def publisher(amqp_url: str) -> Iterable[Publisher]:
    topology = TopologySettings(SIMULATED_TYPES)
    with Publisher(AmqpSettings(urls=(amqp_url,)), topology=topology) as publisher:
        yield publisher


@pytest.mark.integration
def test_queue_depths_match_the_report(publisher: Publisher, depths: Depths) -> None:
    simulation = Simulation(vehicles=5, seed=3, rate=0, count=3_000, bad_ratio=0.15)
    report = run(simulation, publisher)
    assert report.complete
    assert report.sent == report.confirmed == 3_000
    assert set(report.tally.kinds) == set(Kind)
    queues = [routing_key(name) for name in SIMULATED_TYPES]
    found = depths([*queues, UNROUTED_QUEUE], 3_000)
    for queue in queues:
        assert found[queue] == report.tally.routing_keys[queue], queue
    unknown = sum(
        n
        for key, n in report.tally.routing_keys.items()
        if sensor_type_from_routing_key(key) not in SIMULATED_TYPES
    )
    assert found[UNROUTED_QUEUE] == unknown == report.expected()["unrouted_queue"] > 0
    json.dumps(report.to_dict())


@pytest.mark.integration
def test_rate_is_held(publisher: Publisher) -> None:
    report = run(Simulation(vehicles=2, rate=400, count=400), publisher)
    assert report.confirmed == 400
    assert 0.9 < report.elapsed_s < 1.6
    assert 250 < report.rate <= 450


@pytest.mark.integration
def test_duration_limits_the_run(publisher: Publisher) -> None:
    report = run(Simulation(vehicles=2, rate=300, duration=0.8), publisher)
    assert 0.75 < report.elapsed_s < 1.5
    assert 200 <= report.confirmed <= 260
    assert not report.interrupted


@pytest.mark.integration
def test_stop_ends_an_open_ended_run_cleanly(publisher: Publisher) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    # 1000 readings per tick at 500 msg/s: ticks of 2 s, the first one due at once.
    report = run(Simulation(vehicles=100, rate=500), publisher, stop=stop)
    assert time.monotonic() - started < 1.5
    assert report.interrupted
    assert report.complete
    assert 150 < report.confirmed == report.sent < 320


@pytest.mark.integration
def test_never_publishes_ahead_of_the_clock(publisher: Publisher) -> None:
    """Unthrottled and open-ended, simulated time would race ahead: it is held to real time."""
    stop = threading.Event()
    threading.Timer(1.2, stop.set).start()
    before = time.time()
    report = run(Simulation(vehicles=2, types=("battery",), rate=0), publisher, stop=stop)
    assert 2 <= report.sent <= 6  # two vehicles, one reading each per second, from one tick ago
    newest = max(seen.last_ms for seen in report.tally.sensors.values())
    assert newest <= (before + report.elapsed_s) * 1000

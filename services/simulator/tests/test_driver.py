"""The driver's schedule: city and highway trips look different; low charge leads to a charger."""

from __future__ import annotations

import itertools
import random
import statistics

from ev_simulator.driver import CHARGING, DRIVING, Activity
from ev_simulator.vehicle import Vehicle


def drive(activity: Activity, seconds: int, seed: int = 5, soc: float = 80.0) -> list[float]:
    """Speeds in km/h, second by second, while the vehicle keeps doing ``activity``."""
    vehicle = Vehicle.random("ev_0001", random.Random(seed))
    vehicle.state.soc = soc
    vehicle.driver.begin(activity, duration=seconds)
    speeds: list[float] = []
    while len(speeds) < seconds and vehicle.activity is activity:
        vehicle.advance(1.0)
        speeds.append(vehicle.state.speed * 3.6)
    return speeds


def test_city_is_stop_and_go() -> None:
    for seed in range(5):
        speeds = drive(Activity.CITY, 1200, seed)
        assert max(speeds) <= 56.0
        assert max(speeds) >= 30.0
        stopped = sum(speed < 0.5 for speed in speeds) / len(speeds)
        assert 0.1 < stopped < 0.6
        # Many separate stops (traffic lights), not one long one.
        stops = sum(1 for a, b in itertools.pairwise(speeds) if a >= 0.5 > b)
        assert stops >= 8


def test_highway_ramps_up_and_cruises() -> None:
    for seed in range(5):
        speeds = drive(Activity.HIGHWAY, 1800, seed)
        assert speeds[0] < 15.0  # starts from a stop
        cruise = speeds[120:1700]
        assert 95.0 <= max(cruise) <= 140.0
        assert statistics.mean(cruise) > 80.0
        assert sum(speed < 0.5 for speed in cruise) == 0


def test_city_and_highway_profiles_differ() -> None:
    city = drive(Activity.CITY, 1200)
    highway = drive(Activity.HIGHWAY, 1200)
    assert statistics.mean(highway) > 2.5 * statistics.mean(city)
    assert statistics.pstdev(city) > statistics.pstdev(highway[120:1100])


def test_trips_end_stopped_and_the_schedule_goes_on() -> None:
    vehicle = Vehicle.random("ev_0001", random.Random(11))
    vehicle.driver.begin(Activity.HIGHWAY, duration=300)
    seen = []
    for _ in range(6 * 3600):
        before = vehicle.activity
        vehicle.advance(1.0)
        if vehicle.activity is not before:
            if before in DRIVING:
                assert vehicle.state.speed < 0.5
            seen.append(vehicle.activity)
    assert len(set(seen)) >= 3


def test_low_charge_leads_to_charging_then_driving_again() -> None:
    vehicle = Vehicle.random("ev_0001", random.Random(3))
    vehicle.state.soc = vehicle.spec.low_soc + 0.5
    vehicle.driver.begin(Activity.HIGHWAY, duration=4 * 3600)
    for _ in range(3600):
        vehicle.advance(1.0)
        if vehicle.activity in CHARGING:
            break
    assert vehicle.activity in CHARGING
    low = vehicle.state.soc
    for _ in range(6 * 3600):
        vehicle.advance(1.0)
        if vehicle.activity not in CHARGING:
            break
    assert vehicle.state.soc > low + 10.0


def test_same_seed_same_schedule() -> None:
    assert drive(Activity.CITY, 600, seed=9) == drive(Activity.CITY, 600, seed=9)
    assert drive(Activity.CITY, 600, seed=9) != drive(Activity.CITY, 600, seed=10)

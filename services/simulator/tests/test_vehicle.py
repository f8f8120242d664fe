"""A vehicle over long stretches: never outside its physical limits, whatever the tick."""

from __future__ import annotations

import random

import pytest

from ev_simulator.driver import Activity
from ev_simulator.vehicle import Vehicle


@pytest.mark.parametrize("seed", range(6))
def test_a_day_of_driving_stays_in_bounds(seed: int) -> None:
    vehicle = Vehicle.random(f"ev_{seed}", random.Random(seed))
    odometer = vehicle.state.odometer_km
    activities = set()
    for _ in range(8 * 3600 // 5):
        vehicle.advance(5.0)
        state = vehicle.state
        activities.add(vehicle.activity)
        assert 0.0 <= state.soc <= 100.0
        assert 0.0 <= state.speed * 3.6 <= 140.0
        assert state.odometer_km >= odometer
        odometer = state.odometer_km
        assert 150.0 < vehicle.tyre_pressure_kpa < 320.0
        assert 0.0 <= vehicle.motor_rpm < 15_000.0
    assert len(activities) >= 3


def test_long_ticks_are_integrated_in_short_steps() -> None:
    coarse = Vehicle.random("ev_1", random.Random(2))
    fine = Vehicle.random("ev_1", random.Random(2))
    coarse.driver.begin(Activity.HIGHWAY, duration=600)
    fine.driver.begin(Activity.HIGHWAY, duration=600)
    coarse.advance(10.0)
    for _ in range(10):
        fine.advance(1.0)
    assert coarse.state.speed == pytest.approx(fine.state.speed)
    assert coarse.state.soc == pytest.approx(fine.state.soc)

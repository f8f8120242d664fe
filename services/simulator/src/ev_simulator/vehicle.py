"""One simulated vehicle: its specification, physical state and driver, advanced together."""

from __future__ import annotations

import math
import random

from ev_simulator import physics
from ev_simulator.driver import CHARGING, Activity, Driver
from ev_simulator.physics import VehicleSpec, VehicleState

#: The physics is integrated in steps of at most this many seconds, whatever the tick.
MAX_STEP_S = 1.0


class Vehicle:
    """A vehicle that drives, parks and charges on its own; deterministic given its ``rng``."""

    __slots__ = ("driver", "sensor_id", "spec", "state")

    def __init__(
        self, sensor_id: str, spec: VehicleSpec, state: VehicleState, driver: Driver
    ) -> None:
        self.sensor_id = sensor_id
        self.spec = spec
        self.state = state
        self.driver = driver

    @classmethod
    def random(cls, sensor_id: str, rng: random.Random) -> Vehicle:
        """A vehicle somewhere in its week: a random charge, mileage and current activity."""
        spec = VehicleSpec.random(rng)
        state = VehicleState(
            soc=rng.uniform(25.0, 95.0),
            battery_c=spec.ambient_c + rng.uniform(0.0, 4.0),
            tyre_c=spec.ambient_c,
            odometer_km=rng.uniform(2_000.0, 150_000.0),
        )
        driver = Driver(spec, rng)
        weights = {
            Activity.PARKED: 0.35,
            Activity.CITY: 0.35,
            Activity.HIGHWAY: 0.15,
            Activity.AC_CHARGING: 0.10,
            Activity.DC_CHARGING: 0.05,
        }
        activity = rng.choices(list(weights), weights=list(weights.values()))[0]
        if activity in CHARGING:
            state.soc = rng.uniform(10.0, 60.0)
        driver.begin(activity)
        # Part of the activity has already happened before the simulation starts.
        driver.activity_left *= rng.random()
        vehicle = cls(sensor_id, spec, state, driver)
        vehicle.advance(0.0)
        return vehicle

    def advance(self, seconds: float) -> None:
        """Simulate ``seconds`` more of driving, parking or charging (0 refreshes the electrics)."""
        steps = max(1, math.ceil(seconds / MAX_STEP_S - 1e-9))
        dt = seconds / steps
        for _ in range(steps):
            command = self.driver.command(self.state.speed, self.state.soc, dt)
            physics.step(self.spec, self.state, command, max(dt, 1e-3))

    @property
    def activity(self) -> Activity:
        return self.driver.activity

    @property
    def tyre_pressure_kpa(self) -> float:
        return physics.tyre_pressure_kpa(self.spec, self.state)

    @property
    def motor_rpm(self) -> float:
        return physics.motor_rpm(self.spec, self.state)

"""The driver: a schedule of city and highway trips, parking and charging, turned into commands.

Each activity is a small state machine of phases. City driving is stop-and-go (accelerate to
30-50 km/h, cruise, brake to a stop, wait at the lights); highway driving ramps to 100-130 km/h
and cruises with small variations and the odd slowdown; trips end stopped. When the charge falls
below the vehicle's threshold the next activity is a charging session: DC fast charging to
80-90 % or AC charging until nearly full or until the driver unplugs.
"""

from __future__ import annotations

import random
from enum import StrEnum

from ev_simulator.physics import Command, VehicleSpec

KMH = 1.0 / 3.6


class Activity(StrEnum):
    CITY = "city"
    HIGHWAY = "highway"
    PARKED = "parked"
    AC_CHARGING = "ac_charging"
    DC_CHARGING = "dc_charging"


DRIVING = frozenset({Activity.CITY, Activity.HIGHWAY})
CHARGING = frozenset({Activity.AC_CHARGING, Activity.DC_CHARGING})

#: How long each activity lasts, in seconds (charging also ends at its target charge).
DURATIONS: dict[Activity, tuple[float, float]] = {
    Activity.CITY: (180.0, 1200.0),
    Activity.HIGHWAY: (300.0, 2400.0),
    Activity.PARKED: (120.0, 2400.0),
    Activity.AC_CHARGING: (1800.0, 4 * 3600.0),
    Activity.DC_CHARGING: (3600.0, 3600.0),
}


class Driver:
    """Decides, second by second, what one vehicle does; deterministic given its ``rng``."""

    __slots__ = (
        "_charge_target",
        "_charger_kw",
        "_cruise",
        "_phase",
        "_phase_left",
        "_target",
        "activity",
        "activity_left",
        "aggressiveness",
        "rng",
        "spec",
    )

    def __init__(self, spec: VehicleSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        #: 0 is a gentle driver, 1 a sporty one: scales acceleration, braking and cruise speeds.
        self.aggressiveness = rng.random()
        self.activity = Activity.PARKED
        self.activity_left = 0.0
        self._phase = "idle"
        self._phase_left = 0.0
        self._target = 0.0
        self._cruise = 0.0
        self._charger_kw = 0.0
        self._charge_target = 100.0

    def begin(self, activity: Activity, duration: float | None = None) -> None:
        """Start ``activity`` now, for ``duration`` seconds or a random plausible time."""
        low, high = DURATIONS[activity]
        self.activity = activity
        self.activity_left = self.rng.uniform(low, high) if duration is None else duration
        self._target = 0.0
        if activity is Activity.CITY:
            self._phase, self._phase_left = "idle", self.rng.uniform(2.0, 10.0)
        elif activity is Activity.HIGHWAY:
            self._cruise = self.rng.uniform(100.0, 130.0) * KMH
            self._phase, self._phase_left, self._target = "accelerate", 0.0, self._cruise
        elif activity is Activity.AC_CHARGING:
            self._charger_kw = self.rng.choice((7.4, 11.0, 22.0))
            self._charge_target = self.rng.uniform(90.0, 100.0)
        elif activity is Activity.DC_CHARGING:
            self._charger_kw = self.rng.choice((50.0, 150.0, 350.0))
            self._charge_target = self.rng.uniform(80.0, 90.0)

    def command(self, speed: float, soc: float, dt: float) -> Command:
        """The command for the next ``dt`` seconds, moving on to the next activity when done."""
        self.activity_left -= dt
        if self.activity in CHARGING:
            if soc >= self._charge_target or self.activity_left <= 0.0:
                self._next(soc)
                return self.command(speed, soc, 0.0)
            return Command(charger_kw=self._charger_kw, dc=self.activity is Activity.DC_CHARGING)
        if self.activity is Activity.PARKED:
            if self.activity_left <= 0.0:
                self._next(soc)
                return self.command(speed, soc, 0.0)
            return Command(max_deceleration=3.0, awake=speed > 0.0)
        if soc <= self.spec.low_soc or soc <= 1.0:
            self.activity_left = min(self.activity_left, 0.0)  # head for a charger
        if self.activity is Activity.CITY:
            return self._city(speed, soc, dt)
        return self._highway(speed, soc, dt)

    def _city(self, speed: float, soc: float, dt: float) -> Command:
        style = self.aggressiveness
        self._phase_left -= dt
        if self._phase == "idle" and self._phase_left <= 0.0:
            if self.activity_left <= 0.0:
                self._next(soc)
                return self.command(speed, soc, 0.0)
            self._phase, self._target = "accelerate", self.rng.uniform(30.0, 50.0) * KMH
        elif self._phase == "accelerate" and speed >= self._target - 0.3:
            self._phase, self._phase_left = "cruise", self.rng.uniform(8.0, 45.0)
            self._cruise = self._target
        elif self._phase == "cruise":
            if self._phase_left <= 0.0:
                self._phase, self._target = "brake", 0.0
            elif self.rng.random() < 0.1 * dt:
                self._target = max(self._cruise + self.rng.uniform(-4.0, 4.0) * KMH, 5.0 * KMH)
        elif self._phase == "brake" and speed <= 0.0:
            self._phase, self._phase_left = "idle", self.rng.uniform(5.0, 30.0)
        return Command(
            target_speed=self._target,
            max_acceleration=1.0 + 1.2 * style,
            max_deceleration=1.5 + 1.5 * style,
        )

    def _highway(self, speed: float, soc: float, dt: float) -> Command:
        style = self.aggressiveness
        if self.activity_left <= 0.0 and self._phase != "exit":
            self._phase, self._target = "exit", 0.0
        if self._phase == "exit":
            if speed <= 0.0:
                self._next(soc)
                return self.command(speed, soc, 0.0)
        elif self._phase == "accelerate" and speed >= self._target - 1.0:
            self._phase, self._phase_left = "cruise", self.rng.uniform(10.0, 40.0)
        elif self._phase == "cruise":
            self._phase_left -= dt
            if self._phase_left <= 0.0:
                self._phase_left = self.rng.uniform(10.0, 40.0)
                if self.rng.random() < 0.1:  # traffic
                    self._target = self.rng.uniform(60.0, 90.0) * KMH
                else:
                    self._target = self._cruise + self.rng.uniform(-6.0, 6.0) * KMH
        return Command(
            target_speed=self._target,
            max_acceleration=0.8 + 1.0 * style,
            max_deceleration=1.0 + 0.5 * style,
        )

    def _next(self, soc: float) -> None:
        """Choose what comes after the current activity."""
        rng, previous = self.rng, self.activity
        if soc <= self.spec.low_soc and previous not in CHARGING:
            fast = previous is Activity.HIGHWAY or rng.random() < 0.5
            self.begin(Activity.DC_CHARGING if fast else Activity.AC_CHARGING)
            return
        if previous is Activity.PARKED or previous in CHARGING:
            self.begin(rng.choices((Activity.CITY, Activity.HIGHWAY), weights=(0.65, 0.35))[0])
            return
        if soc < 60.0 and rng.random() < 0.25:  # plugged in at home or at work
            self.begin(Activity.AC_CHARGING)
            return
        choices = (Activity.CITY, Activity.HIGHWAY, Activity.PARKED)
        self.begin(rng.choices(choices, weights=(0.4, 0.25, 0.35))[0])

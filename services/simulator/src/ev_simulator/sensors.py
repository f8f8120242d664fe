"""What a vehicle's sensors report: one value per sensor type, in the unit its profile uses.

Most vehicles report canonical units. Some report in alternative units the catalogue knows, so the
pipeline's conversions get exercised: "imperial" vehicles (fahrenheit, mph, mile, psi) and "raw"
telematics units (fraction, millivolt, milliampere, watt). The values are converted with the
inverse of the catalogue's own conversions, so factors live only in ev-schemas.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ev_schemas import Catalogue, default_catalogue
from ev_simulator.errors import ConfigurationError
from ev_simulator.vehicle import Vehicle


def _read_speed(vehicle: Vehicle) -> float:
    return vehicle.state.speed * 3.6


#: How each simulated type is read from a vehicle (canonical unit), its decimals, and sensor noise.
_READERS: dict[str, tuple[Callable[[Vehicle], float], int, float]] = {
    "battery": (lambda v: v.state.soc, 2, 0.0),
    "temperature": (lambda v: v.state.battery_c, 1, 0.05),
    "speed": (_read_speed, 1, 0.1),
    "voltage": (lambda v: v.state.voltage_v, 1, 0.2),
    "current": (lambda v: v.state.current_a, 1, 0.3),
    "power": (lambda v: v.state.power_kw, 2, 0.0),
    "state_of_health": (lambda v: v.spec.state_of_health, 2, 0.0),
    "odometer": (lambda v: v.state.odometer_km, 3, 0.0),
    "tire_pressure": (lambda v: v.tyre_pressure_kpa, 1, 0.3),
    "motor_rpm": (lambda v: v.motor_rpm, 0, 0.0),
}

SIMULATED_TYPES: tuple[str, ...] = tuple(_READERS)

#: Alternative unit per type, and decimals in that unit, for each non-canonical profile.
UNIT_PROFILES: Mapping[str, Mapping[str, tuple[str, int]]] = MappingProxyType(
    {
        "imperial": {
            "temperature": ("fahrenheit", 1),
            "speed": ("mph", 1),
            "odometer": ("mile", 3),
            "tire_pressure": ("psi", 2),
        },
        "raw": {
            "battery": ("fraction", 4),
            "voltage": ("millivolt", 0),
            "current": ("milliampere", 0),
            "power": ("watt", 0),
        },
    }
)


@dataclass(frozen=True, slots=True)
class Channel:
    """One sensor of one vehicle: its type, the unit it publishes in, and the conversion to it."""

    sensor_type: str
    unit: str
    read: Callable[[Vehicle], float]
    decimals: int
    noise: float
    scale: float  # published = (canonical - offset) / scale
    offset: float
    minimum: float  # the plausible range, in canonical units
    maximum: float

    def value(self, vehicle: Vehicle, rng: random.Random) -> float:
        """The published value: read, noisy where sensors are, kept in range, converted, rounded."""
        value = self.read(vehicle)
        if self.noise and value:
            value += rng.gauss(0.0, self.noise)
        value = min(max(value, self.minimum), self.maximum)
        if self.scale != 1.0 or self.offset != 0.0:
            value = (value - self.offset) / self.scale
        # + 0.0 turns a rounded -0.0 into 0.0, which reads better in JSON.
        return round(value, self.decimals) + 0.0


def channels(
    types: Sequence[str], profile: str = "metric", catalogue: Catalogue | None = None
) -> tuple[Channel, ...]:
    """The channels of a vehicle with unit ``profile`` ("metric", "imperial" or "raw")."""
    catalogue = catalogue or default_catalogue()
    if profile != "metric" and profile not in UNIT_PROFILES:
        raise ConfigurationError(f"unknown unit profile {profile!r}")
    alternatives = UNIT_PROFILES.get(profile, {})
    result = []
    for name in types:
        if name not in _READERS:
            raise ConfigurationError(
                f"the simulator cannot produce sensor type {name!r}; "
                f"it knows: {', '.join(SIMULATED_TYPES)}"
            )
        if name not in catalogue:
            raise ConfigurationError(f"sensor type {name!r} is not in the catalogue")
        sensor_type = catalogue[name]
        read, decimals, noise = _READERS[name]
        unit, scale, offset = sensor_type.unit, 1.0, 0.0
        if name in alternatives:
            unit, decimals = alternatives[name]
            conversion = sensor_type.conversion(unit)
            if conversion is None:
                raise ConfigurationError(f"the catalogue does not convert {unit!r} for {name}")
            scale, offset = conversion.scale, conversion.offset
        result.append(
            Channel(
                name,
                unit,
                read,
                decimals,
                noise,
                scale,
                offset,
                sensor_type.minimum,
                sensor_type.maximum,
            )
        )
    return tuple(result)

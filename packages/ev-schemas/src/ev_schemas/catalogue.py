"""The catalogue of sensor types: canonical unit, accepted alternatives and plausible range."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ev_schemas import units
from ev_schemas.errors import SchemaError

SENSOR_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: Path segments of the API that can never be sensor types.
RESERVED_NAMES = frozenset({"aggregate", "alarms", "history", "summary", "ws"})


@dataclass(frozen=True, slots=True)
class SensorType:
    """One kind of signal: canonical unit, units converted into it, plausible range."""

    name: str
    unit: str
    minimum: float
    maximum: float
    description: str
    alternatives: Mapping[str, units.Conversion] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not SENSOR_TYPE_PATTERN.fullmatch(self.name) or self.name in RESERVED_NAMES:
            raise SchemaError(f"invalid sensor type name {self.name!r}")
        if self.minimum > self.maximum:
            raise SchemaError(f"{self.name}: minimum {self.minimum} > maximum {self.maximum}")
        if self.unit in self.alternatives:
            raise SchemaError(f"{self.name}: canonical unit {self.unit!r} listed as an alternative")
        object.__setattr__(self, "alternatives", MappingProxyType(dict(self.alternatives)))

    @property
    def accepted_units(self) -> tuple[str, ...]:
        """Every accepted unit, canonical first."""
        return (self.unit, *self.alternatives)

    def conversion(self, unit: str) -> units.Conversion | None:
        """The conversion from ``unit`` to the canonical unit, or None if the unit is unknown."""
        if unit == self.unit:
            return units.IDENTITY
        return self.alternatives.get(unit)


DEFAULT_TYPES: tuple[SensorType, ...] = (
    SensorType(
        "battery",
        "percentage",
        0.0,
        100.0,
        "State of charge of the traction battery.",
        {"percent": units.IDENTITY, "%": units.IDENTITY, "fraction": units.FRACTION_TO_PERCENT},
    ),
    SensorType(
        "temperature",
        "celsius",
        -60.0,
        200.0,
        "Battery pack temperature.",
        {"fahrenheit": units.FAHRENHEIT_TO_CELSIUS, "kelvin": units.KELVIN_TO_CELSIUS},
    ),
    SensorType(
        "speed",
        "km/h",
        0.0,
        400.0,
        "Vehicle speed over ground.",
        {"mph": units.MPH_TO_KMH, "m/s": units.MPS_TO_KMH},
    ),
    SensorType(
        "voltage",
        "volt",
        0.0,
        1500.0,
        "Traction battery pack voltage.",
        {"millivolt": units.MILLI},
    ),
    SensorType(
        "current",
        "ampere",
        -3000.0,
        3000.0,
        "Pack current; negative while charging or regenerating.",
        {"milliampere": units.MILLI},
    ),
    SensorType(
        "power",
        "kilowatt",
        -1000.0,
        1500.0,
        "Electrical power at the pack; negative while charging or regenerating.",
        {"watt": units.MILLI},
    ),
    SensorType(
        "state_of_health",
        "percentage",
        0.0,
        100.0,
        "Remaining battery capacity relative to new.",
        {"percent": units.IDENTITY, "%": units.IDENTITY, "fraction": units.FRACTION_TO_PERCENT},
    ),
    SensorType(
        "odometer",
        "kilometer",
        0.0,
        5_000_000.0,
        "Total distance driven.",
        {"mile": units.MILE_TO_KM, "meter": units.METER_TO_KM},
    ),
    SensorType(
        "tire_pressure",
        "kilopascal",
        0.0,
        1000.0,
        "Tyre inflation pressure (gauge).",
        {"psi": units.PSI_TO_KPA, "bar": units.BAR_TO_KPA},
    ),
    SensorType(
        "motor_rpm",
        "rpm",
        -30000.0,
        30000.0,
        "Traction motor speed; negative in reverse.",
    ),
)


class Catalogue(Mapping[str, SensorType]):
    """An immutable set of sensor types, looked up by name. Which types exist is configuration."""

    __slots__ = ("_types",)

    def __init__(self, types: Iterable[SensorType]) -> None:
        by_name: dict[str, SensorType] = {}
        for sensor_type in types:
            if sensor_type.name in by_name:
                raise SchemaError(f"sensor type {sensor_type.name!r} defined twice")
            by_name[sensor_type.name] = sensor_type
        if not by_name:
            raise SchemaError("a catalogue needs at least one sensor type")
        self._types = MappingProxyType(by_name)

    def __getitem__(self, name: str) -> SensorType:
        return self._types[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __repr__(self) -> str:
        return f"Catalogue({list(self._types)!r})"

    def restrict(self, names: Iterable[str]) -> Catalogue:
        """Only ``names``, in that order; unknown names raise :class:`SchemaError`."""
        wanted = list(dict.fromkeys(names))
        unknown = [name for name in wanted if name not in self._types]
        if unknown:
            raise SchemaError(
                f"unknown sensor type(s) {', '.join(unknown)}; known: {', '.join(self._types)}"
            )
        return Catalogue(self._types[name] for name in wanted)


def default_catalogue() -> Catalogue:
    """The built-in EV signals: battery, temperature, speed, voltage, current, power, ..."""
    return Catalogue(DEFAULT_TYPES)

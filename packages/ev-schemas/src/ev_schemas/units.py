"""Unit conversions: every alternative unit is a linear map onto its type's canonical unit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Conversion:
    """``canonical = value * scale + offset``."""

    scale: float = 1.0
    offset: float = 0.0

    def apply(self, value: float) -> float:
        if self.scale == 1.0 and self.offset == 0.0:
            return value
        return value * self.scale + self.offset


IDENTITY = Conversion()

# Exact factors: 1 mile = 1.609344 km (international mile), 1 psi = 6.894757293168 kPa.
MILE_KM = 1.609344
PSI_KPA = 6.894757293168

FAHRENHEIT_TO_CELSIUS = Conversion(scale=5.0 / 9.0, offset=-32.0 * 5.0 / 9.0)
KELVIN_TO_CELSIUS = Conversion(offset=-273.15)
MPH_TO_KMH = Conversion(scale=MILE_KM)
MPS_TO_KMH = Conversion(scale=3.6)
MILE_TO_KM = Conversion(scale=MILE_KM)
METER_TO_KM = Conversion(scale=0.001)
PSI_TO_KPA = Conversion(scale=PSI_KPA)
BAR_TO_KPA = Conversion(scale=100.0)
MILLI = Conversion(scale=0.001)
FRACTION_TO_PERCENT = Conversion(scale=100.0)

"""Sensor channels: canonical or alternative units, converted with the catalogue's own factors."""

from __future__ import annotations

import random

import pytest

from ev_schemas import default_catalogue
from ev_simulator.errors import ConfigurationError
from ev_simulator.sensors import SIMULATED_TYPES, UNIT_PROFILES, channels
from ev_simulator.vehicle import Vehicle


def test_every_catalogue_type_is_simulated() -> None:
    assert set(SIMULATED_TYPES) == set(default_catalogue())


def test_metric_channels_use_canonical_units() -> None:
    catalogue = default_catalogue()
    for channel in channels(SIMULATED_TYPES):
        assert channel.unit == catalogue[channel.sensor_type].unit


@pytest.mark.parametrize("profile", sorted(UNIT_PROFILES))
def test_alternative_units_convert_back_to_the_canonical_value(profile: str) -> None:
    catalogue = default_catalogue()
    vehicle = Vehicle.random("ev_1", random.Random(4))
    for _ in range(300):
        vehicle.advance(1.0)
    metric = {c.sensor_type: c for c in channels(SIMULATED_TYPES)}
    for channel in channels(SIMULATED_TYPES, profile):
        conversion = catalogue[channel.sensor_type].conversion(channel.unit)
        assert conversion is not None
        if channel.sensor_type in UNIT_PROFILES[profile]:
            assert channel.unit != catalogue[channel.sensor_type].unit
        quiet = random.Random(0)
        published = channel.value(vehicle, quiet)
        canonical = metric[channel.sensor_type].read(vehicle)
        tolerance = (
            10 ** -metric[channel.sensor_type].decimals + 5 * metric[channel.sensor_type].noise
        )
        assert conversion.apply(published) == pytest.approx(canonical, abs=tolerance + 0.01)


def test_unknown_type_or_profile_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot produce"):
        channels(["humidity"])
    with pytest.raises(ConfigurationError, match="profile"):
        channels(["battery"], "martian")

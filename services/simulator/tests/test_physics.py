"""The physics of one vehicle: energy, charge, heat and tyres move the way real ones do."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ev_simulator.physics import (
    Command,
    VehicleSpec,
    VehicleState,
    charge_acceptance,
    motor_rpm,
    open_circuit_voltage,
    pack_current,
    step,
    tyre_pressure_kpa,
)


def make(seed: int = 1, soc: float = 60.0) -> tuple[VehicleSpec, VehicleState]:
    spec = VehicleSpec.random(random.Random(seed))
    return spec, VehicleState(soc=soc, battery_c=spec.ambient_c, tyre_c=spec.ambient_c)


def hold(spec: VehicleSpec, state: VehicleState, command: Command, seconds: int) -> None:
    for _ in range(seconds):
        step(spec, state, command, 1.0)


def test_spec_is_plausible_for_many_vehicles() -> None:
    rng = random.Random(7)
    for _ in range(200):
        spec = VehicleSpec.random(rng)
        assert 90.0 <= spec.state_of_health <= 100.0
        assert spec.usable_kwh < spec.capacity_kwh
        nominal = 3.7 * spec.series_cells
        assert 350.0 <= nominal <= 400.0


def test_pack_voltage_rises_with_charge() -> None:
    spec, _ = make()
    voltages = [open_circuit_voltage(spec, soc) for soc in range(0, 101, 5)]
    assert voltages == sorted(voltages)
    assert voltages[0] < voltages[-1]


def test_pack_current_is_power_over_voltage_with_sign() -> None:
    assert pack_current(400.0, 0.05, 40_000.0) == pytest.approx(100.0, rel=0.02)
    assert pack_current(400.0, 0.05, -40_000.0) == pytest.approx(-100.0, rel=0.02)
    assert pack_current(400.0, 0.05, 0.0) == 0.0


def test_dc_charging_tapers_above_80_percent() -> None:
    assert charge_acceptance(30.0, dc=True) == 1.0
    assert charge_acceptance(79.0, dc=True) > 0.7
    assert charge_acceptance(90.0, dc=True) < 0.5
    assert charge_acceptance(100.0, dc=True) == 0.0
    curve = [charge_acceptance(soc, dc=True) for soc in range(0, 101)]
    assert curve == sorted(curve, reverse=True)
    assert charge_acceptance(90.0, dc=False) == 1.0


def test_accelerates_within_limits_and_integrates_distance() -> None:
    spec, state = make()
    command = Command(target_speed=100 / 3.6, max_acceleration=2.0)
    step(spec, state, command, 1.0)
    assert 0.0 < state.speed <= 2.0
    hold(spec, state, command, 120)
    assert state.speed == pytest.approx(100 / 3.6, abs=0.01)
    start = state.odometer_km
    hold(spec, state, command, 36)  # 36 s at 100 km/h is one kilometre
    assert state.odometer_km - start == pytest.approx(1.0, abs=0.01)
    assert motor_rpm(spec, state) > 5000


def test_soc_falls_while_driving_and_power_follows_speed() -> None:
    spec, state = make(soc=80.0)
    hold(spec, state, Command(target_speed=50 / 3.6), 60)
    city_power = state.power_kw
    hold(spec, state, Command(target_speed=120 / 3.6), 120)
    assert state.power_kw > city_power > 0.0  # drag grows with the square of speed
    assert state.current_a == pytest.approx(state.power_kw * 1000 / state.voltage_v)
    before = state.soc
    hold(spec, state, Command(target_speed=120 / 3.6), 600)
    assert state.soc < before - 1.0


def test_braking_regenerates() -> None:
    spec, state = make()
    hold(spec, state, Command(target_speed=80 / 3.6), 60)
    soc = state.soc
    step(spec, state, Command(target_speed=0.0, max_deceleration=2.5), 1.0)
    assert state.power_kw < 0.0
    assert state.current_a < 0.0
    assert state.soc > soc


@pytest.mark.parametrize(("dc", "kw"), [(True, 150.0), (False, 11.0)])
def test_soc_rises_while_charging(dc: bool, kw: float) -> None:
    spec, state = make(soc=20.0)
    hold(spec, state, Command(charger_kw=kw, dc=dc), 600)
    assert state.soc > 20.5
    assert state.power_kw < 0.0
    assert state.current_a < 0.0
    assert state.voltage_v > open_circuit_voltage(spec, state.soc)  # charging lifts the voltage
    assert state.speed == 0.0


def test_dc_charging_is_slower_above_80_percent() -> None:
    spec, state = make(soc=40.0)
    hold(spec, state, Command(charger_kw=350.0, dc=True), 1)
    fast = -state.power_kw
    state.soc = 92.0
    hold(spec, state, Command(charger_kw=350.0, dc=True), 1)
    assert -state.power_kw < 0.5 * fast


def test_temperature_rises_under_load_and_relaxes_when_parked() -> None:
    spec, loaded = make(soc=15.0)
    _, parked = make(soc=15.0)
    hold(spec, loaded, Command(charger_kw=350.0, dc=True), 900)
    hold(spec, parked, Command(awake=False), 900)
    assert loaded.battery_c > spec.ambient_c + 3.0
    assert parked.battery_c == pytest.approx(spec.ambient_c, abs=0.1)
    hot = loaded.battery_c
    hold(spec, loaded, Command(awake=False), 3600)
    assert loaded.battery_c < hot


def test_tyre_pressure_rises_with_driving_heat() -> None:
    spec, state = make()
    cold = tyre_pressure_kpa(spec, state)
    assert cold == pytest.approx(spec.cold_tyre_kpa)
    assert 225.0 <= cold <= 255.0
    hold(spec, state, Command(target_speed=120 / 3.6), 1800)
    assert cold + 5.0 < tyre_pressure_kpa(spec, state) < cold + 40.0


def test_an_empty_battery_stops_the_car() -> None:
    spec, state = make(soc=0.05)
    state.speed = 30.0
    hold(spec, state, Command(target_speed=30.0), 120)
    assert state.soc == 0.0
    assert state.speed == 0.0


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    soc=st.floats(0.0, 100.0),
    target_kmh=st.floats(0.0, 180.0),
    charger_kw=st.sampled_from([0.0, 7.4, 50.0, 350.0]),
    dt=st.floats(0.05, 1.0),
)
def test_state_stays_physical(
    seed: int, soc: float, target_kmh: float, charger_kw: float, dt: float
) -> None:
    spec, state = make(seed, soc)
    command = Command(target_speed=target_kmh / 3.6, charger_kw=charger_kw, dc=charger_kw > 22)
    for _ in range(200):
        step(spec, state, command, dt)
        assert 0.0 <= state.soc <= 100.0
        assert state.speed >= 0.0
        assert 250.0 < state.voltage_v < 500.0
        assert -60.0 < state.battery_c < 80.0

"""Physics-lite of one electric vehicle: longitudinal dynamics, battery pack, heat and tyres.

Good enough that the signals move together the way real ones do (power from speed and
acceleration, current from power and pack voltage, temperature from I²R heating), cheap enough
to step thousands of vehicles per second. All quantities in SI units unless the name says
otherwise (``_kw``, ``_kwh``, ``_kmh``, ``_c`` for degrees Celsius, ``_kpa`` for gauge kPa).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

GRAVITY = 9.81
AIR_DENSITY = 1.2
ATMOSPHERE_KPA = 101.325
#: Coolant target the active cooling pulls towards once the pack is warm.
COOLANT_C = 30.0
ACTIVE_COOLING_ABOVE_C = 35.0
#: What a parked, locked car draws from the traction pack (12 V battery upkeep, telematics).
STANDBY_KW = 0.03
#: What the car draws while plugged in: charging electronics and coolant pumps, no cabin comfort.
CHARGING_OVERHEAD_KW = 0.3
#: Above this the battery management system halves charging power, and cuts it further when hotter.
CHARGE_DERATE_ABOVE_C = 48.0


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """The fixed characteristics of one vehicle, drawn once per vehicle from the fleet's seed."""

    mass_kg: float
    drag_area_m2: float  # drag coefficient times frontal area
    rolling_resistance: float
    wheel_radius_m: float
    gear_ratio: float
    motor_power_kw: float
    regen_power_kw: float
    drive_efficiency: float
    regen_efficiency: float
    capacity_kwh: float  # usable capacity when new
    series_cells: int
    resistance_ohm: float  # pack internal resistance
    state_of_health: float  # percent of capacity left
    ac_max_kw: float
    dc_max_kw: float
    thermal_mass_kj_per_k: float
    passive_cooling_w_per_k: float
    active_cooling_w_per_k: float
    ambient_c: float
    aux_kw: float  # electronics plus climate control while awake
    cold_tyre_kpa: float  # gauge pressure when filled at ambient temperature
    low_soc: float  # percent at which the driver heads for a charger

    @classmethod
    def random(cls, rng: random.Random) -> VehicleSpec:
        """A plausible car: compact hatchback to large SUV, 96 to 108 cells in series."""
        ambient = rng.uniform(-5.0, 32.0)
        return cls(
            mass_kg=rng.uniform(1500.0, 2400.0),
            drag_area_m2=rng.uniform(0.23, 0.32) * rng.uniform(2.2, 2.7),
            rolling_resistance=rng.uniform(0.008, 0.012),
            wheel_radius_m=rng.uniform(0.31, 0.36),
            gear_ratio=rng.uniform(8.5, 10.5),
            motor_power_kw=rng.uniform(110.0, 300.0),
            regen_power_kw=rng.uniform(50.0, 120.0),
            drive_efficiency=rng.uniform(0.86, 0.92),
            regen_efficiency=rng.uniform(0.60, 0.75),
            capacity_kwh=rng.uniform(50.0, 100.0),
            series_cells=rng.choice((96, 100, 108)),
            resistance_ohm=rng.uniform(0.03, 0.06),
            state_of_health=rng.uniform(90.0, 100.0),
            ac_max_kw=rng.choice((7.4, 11.0)),
            dc_max_kw=rng.uniform(50.0, 250.0),
            thermal_mass_kj_per_k=rng.uniform(350.0, 550.0),
            passive_cooling_w_per_k=rng.uniform(15.0, 30.0),
            active_cooling_w_per_k=rng.uniform(600.0, 1000.0),
            ambient_c=ambient,
            # Heating or air conditioning costs more the further outside is from 21 °C.
            aux_kw=rng.uniform(0.3, 0.7) + 0.08 * abs(ambient - 21.0),
            cold_tyre_kpa=rng.uniform(230.0, 250.0),
            low_soc=rng.uniform(15.0, 30.0),
        )

    @property
    def usable_kwh(self) -> float:
        return self.capacity_kwh * self.state_of_health / 100.0


@dataclass(slots=True)
class VehicleState:
    """What changes from one step to the next."""

    soc: float  # percent, 0 to 100
    speed: float = 0.0  # m/s, never negative (no reversing)
    acceleration: float = 0.0
    power_kw: float = 0.0  # at the pack terminals; negative while charging or regenerating
    current_a: float = 0.0
    voltage_v: float = 0.0
    battery_c: float = 20.0
    tyre_c: float = 20.0
    odometer_km: float = 0.0


@dataclass(frozen=True, slots=True)
class Command:
    """What the driver asks for during one step: a speed to reach, and a charger if plugged in."""

    target_speed: float = 0.0  # m/s
    max_acceleration: float = 1.5  # m/s², positive
    max_deceleration: float = 2.5  # m/s², positive
    charger_kw: float = 0.0  # offered by the charger; 0 when not plugged in
    dc: bool = False
    awake: bool = True  # climate control and electronics on

    @property
    def charging(self) -> bool:
        return self.charger_kw > 0.0


def open_circuit_voltage(spec: VehicleSpec, soc: float) -> float:
    """Pack voltage at rest: an NMC-like cell curve (3.2 V empty, 4.15 V full) times the cells."""
    fraction = min(max(soc / 100.0, 0.0), 1.0)
    cell = 3.45 + 0.70 * fraction - 0.25 * math.exp(-20.0 * fraction)
    return cell * spec.series_cells


def charge_acceptance(soc: float, *, dc: bool) -> float:
    """The fraction of its maximum charging power the pack accepts at ``soc``.

    DC fast charging holds full power to half charge, eases off to 80 %, then tapers hard (the
    cells' voltage limit); AC charging is slow enough to stay at full power until nearly full.
    """
    if soc >= 100.0:
        return 0.0
    if not dc:
        return 1.0 if soc < 95.0 else max(0.3, 1.0 - 0.14 * (soc - 95.0))
    if soc <= 50.0:
        return 1.0
    if soc <= 80.0:
        return 1.0 - 0.25 * (soc - 50.0) / 30.0
    return 0.75 - 0.65 * (soc - 80.0) / 20.0


def _thermal_derate(battery_c: float) -> float:
    if battery_c <= CHARGE_DERATE_ABOVE_C:
        return 1.0
    return max(0.1, 0.5 - 0.05 * (battery_c - CHARGE_DERATE_ABOVE_C))


def pack_current(open_circuit_v: float, resistance_ohm: float, power_w: float) -> float:
    """Current drawing ``power_w`` from a pack of EMF ``open_circuit_v`` behind ``resistance_ohm``.

    Solves P = (V_oc - I R) I for the physical (smaller) root; power beyond what the pack can
    deliver is capped at its maximum, where the discriminant is zero.
    """
    discriminant = open_circuit_v * open_circuit_v - 4.0 * resistance_ohm * power_w
    return (open_circuit_v - math.sqrt(max(discriminant, 0.0))) / (2.0 * resistance_ohm)


def step(spec: VehicleSpec, state: VehicleState, command: Command, dt: float) -> None:
    """Advance ``state`` by ``dt`` seconds (at most a few seconds for sensible integration)."""
    speed = state.speed
    resistance = spec.rolling_resistance * spec.mass_kg * GRAVITY if speed > 0.0 else 0.0
    drag = 0.5 * AIR_DENSITY * spec.drag_area_m2 * speed * speed
    wanted = (command.target_speed - speed) / dt
    if command.charging or state.soc <= 0.0:
        wanted = -speed / dt
    if wanted >= 0.0:
        acceleration = min(wanted, command.max_acceleration)
        # The motor's power limit caps acceleration at speed.
        max_force = spec.motor_power_kw * 1000.0 / max(speed, 1.0)
        acceleration = min(acceleration, (max_force - resistance - drag) / spec.mass_kg)
    else:
        acceleration = max(wanted, -command.max_deceleration)
    new_speed = max(speed + acceleration * dt, 0.0)
    acceleration = (new_speed - speed) / dt
    mean_speed = 0.5 * (speed + new_speed)

    wheel_w = (spec.mass_kg * acceleration + resistance + drag) * mean_speed
    if wheel_w >= 0.0:
        pack_w = wheel_w / spec.drive_efficiency
    else:  # regenerative braking up to the regen limit; friction brakes take the rest
        pack_w = max(wheel_w * spec.regen_efficiency, -spec.regen_power_kw * 1000.0)
    if command.charging:
        pack_w += CHARGING_OVERHEAD_KW * 1000.0
        limit = spec.dc_max_kw if command.dc else spec.ac_max_kw
        accepted_kw = min(command.charger_kw, limit) * charge_acceptance(state.soc, dc=command.dc)
        accepted_kw *= _thermal_derate(state.battery_c)
        pack_w -= accepted_kw * 1000.0 * (0.95 if command.dc else 0.90)  # charger losses
    else:
        pack_w += (spec.aux_kw if command.awake else STANDBY_KW) * 1000.0

    ocv = open_circuit_voltage(spec, state.soc)
    current = pack_current(ocv, spec.resistance_ohm, pack_w)
    voltage = ocv - current * spec.resistance_ohm
    pack_w = current * voltage  # equal to the demand unless it was capped

    energy_kwh = spec.usable_kwh * state.soc / 100.0 - pack_w * dt / 3_600_000.0
    state.soc = min(max(100.0 * energy_kwh / spec.usable_kwh, 0.0), 100.0)

    # Heat: I²R in the cells plus a little inverter and motor loss shared through the coolant loop;
    # passive loss to ambient, and active cooling once warm.
    heat_w = current * current * spec.resistance_ohm + 0.01 * abs(wheel_w)
    cooling_w = spec.passive_cooling_w_per_k * (state.battery_c - spec.ambient_c)
    if state.battery_c > ACTIVE_COOLING_ABOVE_C:
        cooling_w += spec.active_cooling_w_per_k * (state.battery_c - COOLANT_C)
    state.battery_c += (heat_w - cooling_w) * dt / (spec.thermal_mass_kj_per_k * 1000.0)

    # Tyres warm with speed (flexing) and relax to it over about fifteen minutes.
    tyre_target = spec.ambient_c + 0.12 * new_speed * 3.6
    state.tyre_c += (tyre_target - state.tyre_c) * min(dt / 900.0, 1.0)

    state.speed = new_speed
    state.acceleration = acceleration
    state.power_kw = pack_w / 1000.0
    state.current_a = current
    state.voltage_v = voltage
    state.odometer_km += mean_speed * dt / 1000.0


def tyre_pressure_kpa(spec: VehicleSpec, state: VehicleState) -> float:
    """Gauge pressure: the absolute pressure scales with absolute temperature (ideal gas)."""
    absolute = (spec.cold_tyre_kpa + ATMOSPHERE_KPA) * (state.tyre_c + 273.15)
    return absolute / (spec.ambient_c + 273.15) - ATMOSPHERE_KPA


def motor_rpm(spec: VehicleSpec, state: VehicleState) -> float:
    """Motor speed through a single fixed reduction gear."""
    return state.speed / (2.0 * math.pi * spec.wheel_radius_m) * 60.0 * spec.gear_ratio

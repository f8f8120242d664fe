"""A realistic EV fleet simulator and load generator for the telemetry pipeline.

``Fleet(vehicles, seed, types).messages(count)`` yields messages (valid readings mixed with
chosen bad and tricky kinds); ``run(Simulation(...), publisher)`` publishes them at a rate and
returns a :class:`Report` of what went out. Pure until ``run`` is given a publisher.
"""

from ev_simulator.__about__ import __version__
from ev_simulator.driver import Activity, Driver
from ev_simulator.errors import ConfigurationError, MissingExchange, SimulatorError
from ev_simulator.faults import EXPECTED_REASONS, FaultMaker
from ev_simulator.fleet import Fleet, parse_kinds, sensor_ids
from ev_simulator.message import BAD_KINDS, INVALID_KINDS, STORED_KINDS, Kind, Message, SimReading
from ev_simulator.physics import Command, VehicleSpec, VehicleState
from ev_simulator.ratelimit import TokenBucket
from ev_simulator.report import Report, SensorExpectation, Tally
from ev_simulator.runner import Simulation, run
from ev_simulator.sensors import SIMULATED_TYPES, UNIT_PROFILES, Channel, channels
from ev_simulator.vehicle import Vehicle

__all__ = [
    "BAD_KINDS",
    "EXPECTED_REASONS",
    "INVALID_KINDS",
    "SIMULATED_TYPES",
    "STORED_KINDS",
    "UNIT_PROFILES",
    "Activity",
    "Channel",
    "Command",
    "ConfigurationError",
    "Driver",
    "FaultMaker",
    "Fleet",
    "Kind",
    "Message",
    "MissingExchange",
    "Report",
    "SensorExpectation",
    "SimReading",
    "Simulation",
    "SimulatorError",
    "Tally",
    "TokenBucket",
    "Vehicle",
    "VehicleSpec",
    "VehicleState",
    "__version__",
    "channels",
    "parse_kinds",
    "run",
    "sensor_ids",
]

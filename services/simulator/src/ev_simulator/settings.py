"""The simulator's configuration: environment variables, overridden by command-line options.

Broker variables are the seed's (``RABBITMQ_HOST``, ``_PORT``, ``_USER``, ``_PASS``) plus
``RABBITMQ_VHOST`` and ``RABBITMQ_URLS``/``RABBITMQ_URL`` (comma-separated URLs tried in order,
overriding the parts), shared with the consumer, as are ``RABBITMQ_TLS_*`` for ``amqps://``
URLs. ``SENSOR_TYPES`` and ``DELIVERY_LIMIT`` are the consumer's too, so a topology the simulator
declares is identical to the consumer's. The rest are ``SIMULATOR_*`` and mirror the options of
``ev-simulator``.
"""

from __future__ import annotations

import random
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ev_messaging import AmqpSettings, TopologySettings
from ev_service import SERVICE_CONFIG, LoggingVars
from ev_service.amqp_env import RABBITMQ, TopologyVars
from ev_simulator.fleet import parse_kinds
from ev_simulator.message import BAD_KINDS
from ev_simulator.runner import Simulation
from ev_simulator.sensors import SIMULATED_TYPES


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class SharedSettings(TopologyVars, LoggingVars):
    """The variables the simulator shares with the consumer (the same declarations)."""

    model_config = SERVICE_CONFIG

    rabbitmq: AmqpSettings = Field(default_factory=RABBITMQ.factory())


class SimulatorSettings(BaseSettings):
    """The simulator's own settings (``SIMULATOR_<NAME>``, or ``name=`` as an argument)."""

    model_config = SERVICE_CONFIG | SettingsConfigDict(env_prefix="simulator_")

    vehicles: int = Field(default=10, ge=1)
    """fleet size (`--vehicles`)"""
    rate: float = Field(default=100.0, ge=0)
    """messages per second, `0`: as fast as possible (`--rate`)"""
    duration: float | None = Field(default=None, gt=0)
    """stop after this many seconds (`--duration`)"""
    count: int | None = Field(default=None, ge=0)
    """stop after this many messages (`--count`)"""
    seed: int | None = None
    """random seed; the same seed gives the same fleet and data (`--seed`); unset: drawn"""
    types: str = "all"
    """comma-separated sensor types to simulate, or `all` (`--types`)"""
    bad_ratio: float = Field(default=0.0, ge=0, le=1)
    """fraction of bad or tricky messages (`--bad-ratio`)"""
    bad_kinds: str = "all"
    """comma-separated kinds of bad messages, or `all` (`--bad-kinds`)"""
    alt_unit_ratio: float = Field(default=0.1, ge=0, le=1)
    """fraction of vehicles using alternative units (`--alt-unit-ratio`)"""
    id_prefix: str = "ev_"
    """sensor id prefix, giving `ev_0001`, ... (`--id-prefix`)"""
    tick: float | None = Field(default=None, gt=0)
    """simulated seconds per tick (`--tick`); unset: planned from the rate"""
    declare_topology: bool = False
    """declare the exchanges and queues first, as the consumer does (`--declare-topology`)"""
    max_in_flight: int = Field(default=1000, ge=1)
    """unconfirmed messages allowed (`--max-in-flight`)"""
    flush_timeout: float = Field(default=60.0, gt=0)
    """seconds to wait for the last confirms (`--flush-timeout`)"""
    report_json: Path | None = None
    """also write the report as JSON to this path (`--report-json`)"""
    shared: SharedSettings = Field(default_factory=SharedSettings)

    def amqp_urls(self) -> tuple[str, ...]:
        """Broker URLs, from RABBITMQ_URLS (or RABBITMQ_URL) or made of the parts."""
        return self.shared.rabbitmq.broker_urls

    def amqp(self) -> AmqpSettings:
        """The broker settings."""
        return self.shared.rabbitmq.named("ev-simulator")

    def topology(self) -> TopologySettings:
        """The consumer's topology: its SENSOR_TYPES, or the whole default catalogue."""
        return self.shared.topology()

    def simulation(self) -> Simulation:
        """The run to make; a missing seed is drawn now (and shows in the report)."""
        seed = random.SystemRandom().randrange(1, 1_000_000) if self.seed is None else self.seed
        return Simulation(
            vehicles=self.vehicles,
            seed=seed,
            types=SIMULATED_TYPES if self.types == "all" else tuple(_names(self.types)),
            rate=self.rate,
            count=self.count,
            duration=self.duration,
            bad_ratio=self.bad_ratio,
            bad_kinds=BAD_KINDS if self.bad_kinds == "all" else parse_kinds(_names(self.bad_kinds)),
            alt_unit_ratio=self.alt_unit_ratio,
            id_prefix=self.id_prefix,
            tick=self.tick,
            flush_timeout=self.flush_timeout,
        )

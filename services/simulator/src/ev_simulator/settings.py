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
from urllib.parse import quote

from pydantic import AliasChoices, Field, FilePath, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ev_messaging import AmqpSettings, TlsSettings, TopologySettings
from ev_schemas import default_catalogue
from ev_simulator.fleet import parse_kinds
from ev_simulator.message import BAD_KINDS
from ev_simulator.runner import Simulation
from ev_simulator.sensors import SIMULATED_TYPES


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class SharedSettings(BaseSettings):
    """The variables the simulator shares with the consumer (same names, same defaults)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    rabbitmq_host: str = "localhost"
    rabbitmq_port: int = Field(default=5672, ge=1, le=65535)
    rabbitmq_user: str = "user"
    rabbitmq_pass: SecretStr = SecretStr("password")
    rabbitmq_vhost: str = "/"
    rabbitmq_urls: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("rabbitmq_urls", "rabbitmq_url")
    )
    #: TLS of amqps:// URLs: the broker is always verified (see the consumer's settings).
    rabbitmq_tls_ca_file: FilePath | None = None
    rabbitmq_tls_cert_file: FilePath | None = None
    rabbitmq_tls_key_file: FilePath | None = None
    rabbitmq_tls_server_name: str | None = None
    sensor_types: str = ""
    delivery_limit: int = Field(default=10, ge=1)
    log_level: str = "INFO"

    def amqp_tls(self) -> TlsSettings | None:
        """The RABBITMQ_TLS_* settings, or None when none is set."""
        files = (self.rabbitmq_tls_ca_file, self.rabbitmq_tls_cert_file, self.rabbitmq_tls_key_file)
        if not any(files) and self.rabbitmq_tls_server_name is None:
            return None
        return TlsSettings(*files, server_name=self.rabbitmq_tls_server_name)


class SimulatorSettings(BaseSettings):
    """The simulator's own settings (``SIMULATOR_<NAME>``, or ``name=`` as an argument)."""

    model_config = SettingsConfigDict(
        env_file=None, env_prefix="simulator_", extra="ignore", case_sensitive=False
    )

    vehicles: int = Field(default=10, ge=1)
    rate: float = Field(default=100.0, ge=0)
    duration: float | None = Field(default=None, gt=0)
    count: int | None = Field(default=None, ge=0)
    seed: int | None = None
    types: str = "all"
    bad_ratio: float = Field(default=0.0, ge=0, le=1)
    bad_kinds: str = "all"
    alt_unit_ratio: float = Field(default=0.1, ge=0, le=1)
    id_prefix: str = "ev_"
    tick: float | None = Field(default=None, gt=0)
    declare_topology: bool = False
    max_in_flight: int = Field(default=1000, ge=1)
    flush_timeout: float = Field(default=60.0, gt=0)
    report_json: Path | None = None
    shared: SharedSettings = Field(default_factory=SharedSettings)

    def amqp_urls(self) -> tuple[str, ...]:
        """Broker URLs, from RABBITMQ_URLS (or RABBITMQ_URL) or assembled from the parts."""
        env = self.shared
        if env.rabbitmq_urls is not None:
            return tuple(_names(env.rabbitmq_urls.get_secret_value()))
        user = quote(env.rabbitmq_user, safe="")
        password = quote(env.rabbitmq_pass.get_secret_value(), safe="")
        vhost = quote(env.rabbitmq_vhost, safe="")
        return (f"amqp://{user}:{password}@{env.rabbitmq_host}:{env.rabbitmq_port}/{vhost}",)

    def amqp(self) -> AmqpSettings:
        """The broker settings; raises :class:`ev_messaging.MessagingError` for TLS settings
        that do not fit the URLs (RABBITMQ_TLS_* with amqp:// URLs) or files that do not load."""
        return AmqpSettings(
            urls=self.amqp_urls(), client_name="ev-simulator", tls=self.shared.amqp_tls()
        )

    def topology(self) -> TopologySettings:
        """The consumer's topology: its SENSOR_TYPES, or the whole default catalogue."""
        names = _names(self.shared.sensor_types) or list(default_catalogue())
        return TopologySettings.from_types(names, delivery_limit=self.shared.delivery_limit)

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

"""Configuration from the environment (the seed's variables first), overridden by options."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ev_messaging import TopologySettings
from ev_service import ConfigurationError as InvalidConfiguration
from ev_simulator.errors import ConfigurationError
from ev_simulator.message import BAD_KINDS, Kind
from ev_simulator.sensors import SIMULATED_TYPES
from ev_simulator.settings import SimulatorSettings

ENV = [
    *("RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASS", "RABBITMQ_VHOST"),
    *("RABBITMQ_URLS", "RABBITMQ_URL", "SENSOR_TYPES", "DELIVERY_LIMIT", "TYPES", "RATE"),
    *("SIMULATOR_VEHICLES", "SIMULATOR_RATE", "SIMULATOR_TYPES", "SIMULATOR_BAD_KINDS"),
    "SIMULATOR_SEED",
    *("RABBITMQ_TLS_CA_FILE", "RABBITMQ_TLS_CERT_FILE", "RABBITMQ_TLS_KEY_FILE"),
    "RABBITMQ_TLS_SERVER_NAME",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_seeds() -> None:
    settings = SimulatorSettings()
    assert settings.amqp_urls() == ("amqp://user:password@localhost:5672/%2F",)
    simulation = settings.simulation()
    assert simulation.vehicles == 10
    assert simulation.rate == 100.0
    assert simulation.types == SIMULATED_TYPES
    assert simulation.bad_kinds == BAD_KINDS
    assert simulation.count is None
    assert simulation.duration is None


def test_parts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_HOST", "broker")
    monkeypatch.setenv("RABBITMQ_PORT", "5673")
    monkeypatch.setenv("RABBITMQ_USER", "guest")
    monkeypatch.setenv("RABBITMQ_PASS", "p@ss/word")
    monkeypatch.setenv("RABBITMQ_VHOST", "fleet")
    settings = SimulatorSettings()
    assert settings.amqp_urls() == ("amqp://guest:p%40ss%2Fword@broker:5673/fleet",)
    assert "p@ss" not in repr(settings)
    assert "p%40ss" not in repr(settings.amqp())


@pytest.mark.parametrize("name", ["RABBITMQ_URLS", "RABBITMQ_URL"])
def test_urls_override_the_parts(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("RABBITMQ_HOST", "ignored")
    monkeypatch.setenv(name, "amqp://a:b@one:5672/%2F, amqp://a:b@two:5672/%2F")
    assert SimulatorSettings().amqp_urls() == ("amqp://a:b@one:5672/%2F", "amqp://a:b@two:5672/%2F")


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_VEHICLES", "7")
    monkeypatch.setenv("SIMULATOR_RATE", "50")
    monkeypatch.setenv("SIMULATOR_TYPES", "battery, speed")
    settings = SimulatorSettings(rate=0, bad_kinds="duplicate,bad_unit", seed=3)
    simulation = settings.simulation()
    assert (simulation.vehicles, simulation.rate, simulation.seed) == (7, 0.0, 3)
    assert simulation.types == ("battery", "speed")
    assert simulation.bad_kinds == (Kind.DUPLICATE, Kind.BAD_UNIT)


def test_only_prefixed_variables_configure_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TYPES", "bogus")
    monkeypatch.setenv("RATE", "3")
    settings = SimulatorSettings()
    assert (settings.types, settings.rate) == ("all", 100.0)


def test_a_missing_seed_is_drawn() -> None:
    seeds = {SimulatorSettings().simulation().seed for _ in range(5)}
    assert len(seeds) > 1


def test_topology_matches_the_consumers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SimulatorSettings().topology() == TopologySettings(SIMULATED_TYPES, delivery_limit=10)
    monkeypatch.setenv("SENSOR_TYPES", "battery,speed")
    monkeypatch.setenv("DELIVERY_LIMIT", "3")
    assert SimulatorSettings(types="battery").topology() == TopologySettings(
        ("battery", "speed"), delivery_limit=3
    )


def test_bad_values_are_rejected() -> None:
    with pytest.raises(ValidationError):
        SimulatorSettings(bad_ratio=2)
    with pytest.raises(ValidationError):
        SimulatorSettings(vehicles=0)
    with pytest.raises(ConfigurationError, match="unknown bad kind"):
        SimulatorSettings(bad_kinds="typo").simulation()


def test_amqp_tls_variables_reach_the_broker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URLS", "amqps://a:b@10.0.0.5:5671/%2F")
    monkeypatch.setenv("RABBITMQ_TLS_SERVER_NAME", "rabbit.internal")
    amqp = SimulatorSettings().amqp()
    assert amqp.tls is not None
    [params] = amqp.parameters()
    assert params.ssl_options.server_hostname == "rabbit.internal"
    assert params.ssl_options.context.check_hostname is True


def test_amqp_tls_files_with_plain_urls_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("only its existence is checked here\n")
    monkeypatch.setenv("RABBITMQ_URLS", "amqp://a:b@one:5672/%2F")
    monkeypatch.setenv("RABBITMQ_TLS_CA_FILE", str(ca))
    with pytest.raises(InvalidConfiguration, match="need amqps:// URLs"):
        SimulatorSettings()

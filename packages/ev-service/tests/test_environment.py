"""Environment variables onto the packages' settings: names, aliases, lists, nested TLS, one-line
errors that name the variable and never echo its value."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from ev_messaging import AmqpSettings
from ev_service import SERVICE_CONFIG, ConfigurationError, LoggingVars, RetentionVar, load_settings
from ev_service.amqp_env import RABBITMQ, TopologyVars
from ev_service.redis_env import REDIS
from ev_storage import RedisSettings


class DemoSettings(TopologyVars, RetentionVar, LoggingVars):
    """A service of three shared groups and one variable of its own."""

    model_config = SERVICE_CONFIG

    redis: RedisSettings = Field(default_factory=REDIS.factory(socket_timeout_s=0.25))
    rabbitmq: AmqpSettings = Field(default_factory=RABBITMQ.factory())
    demo_batch: int = Field(default=5, ge=1)
    """a variable of the service's own"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {*REDIS.names.values(), *RABBITMQ.names.values(), "RABBITMQ_URL", "DEMO_BATCH"}
    names |= {"LOG_LEVEL", "LOG_FORMAT", "SENSOR_TYPES", "DELIVERY_LIMIT", "HISTORY_RETENTION_S"}
    for name in names:
        monkeypatch.delenv(name, raising=False)


def test_redis_variables_fill_redis_settings() -> None:
    env = {"REDIS_HOST": "cache", "REDIS_PORT": "6380", "redis_password": "pw", "REDIS_DB": "2"}
    settings = REDIS.load(env)
    assert (settings.host, settings.port, settings.db) == ("cache", 6380, 2)
    assert settings.password is not None
    assert settings.password.get_secret_value() == "pw"  # names are case-insensitive


def test_a_service_default_gives_way_to_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DemoSettings().redis.socket_timeout_s == 0.25
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT_S", "3")
    assert DemoSettings().redis.socket_timeout_s == 3.0


def test_rabbitmq_parts_make_one_url_with_an_ipv6_host_bracketed() -> None:
    settings = RABBITMQ.load(
        {"RABBITMQ_HOST": "::1", "RABBITMQ_USER": "ev", "RABBITMQ_PASS": "p@ss/word"}
    )
    assert settings.broker_urls == ("amqp://ev:p%40ss%2Fword@[::1]:5672/%2F",)
    assert "p@ss" not in repr(settings)


@pytest.mark.parametrize("name", ["RABBITMQ_URLS", "RABBITMQ_URL"])
def test_urls_are_a_comma_separated_list_that_overrides_the_parts(name: str) -> None:
    env = {"RABBITMQ_HOST": "ignored", name: " amqp://a:b@one/%2F, amqp://a:b@two/%2F ,"}
    settings = RABBITMQ.load(env)
    assert settings.broker_urls == ("amqp://a:b@one/%2F", "amqp://a:b@two/%2F")


def test_tls_variables_fill_the_nested_tls_settings() -> None:
    env = {"RABBITMQ_URLS": "amqps://a:b@10.0.0.5/%2F", "RABBITMQ_TLS_SERVER_NAME": "rabbit"}
    settings = RABBITMQ.load(env)
    assert settings.tls is not None
    assert settings.tls.server_name == "rabbit"
    assert settings.uses_tls


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_PORT": "70000"}, "REDIS_PORT: Input should be less than or equal to 65535"),
        ({"REDIS_CLUSTER": "true", "REDIS_DB": "3"}, "a Redis Cluster has database 0 only"),
        ({"REDIS_KEY_PREFIX": "a b"}, "REDIS_KEY_PREFIX: key prefix"),
        ({"REDIS_TLS_CA_FILE": "/nonexistent/ca.pem"}, "REDIS_TLS_CA_FILE: Path does not point"),
    ],
)
def test_redis_errors_are_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        REDIS.load(env)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_errors_never_echo_the_value() -> None:
    with pytest.raises(ConfigurationError) as raised:
        RABBITMQ.load({"RABBITMQ_URLS": "http://user:hunter2@broker/"})
    assert "hunter2" not in str(raised.value)
    assert str(raised.value).startswith("not an AMQP URL")


def test_amqp_errors_become_configuration_errors(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    env = {"RABBITMQ_URLS": "amqp://a:b@one/%2F", "RABBITMQ_TLS_CA_FILE": str(ca)}
    with pytest.raises(ConfigurationError, match=r"^TLS settings need amqps:// URLs"):
        RABBITMQ.load(env)


def test_load_settings_names_the_services_own_and_shared_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_BATCH", "0")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(DemoSettings)
    text = str(raised.value)
    assert "LOG_LEVEL: Input should be" in text
    assert "DEMO_BATCH: Input should be greater than or equal to 1" in text
    assert raised.value.line("ev-demo").startswith("ev-demo: invalid configuration: ")


def test_sensor_types_are_checked_and_empty_means_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSOR_TYPES", " ,")
    every = list(DemoSettings().catalogue())
    assert "battery" in every
    monkeypatch.setenv("SENSOR_TYPES", "speed, battery")
    settings = DemoSettings()
    assert list(settings.catalogue()) == ["speed", "battery"]
    assert settings.topology().sensor_types == ("speed", "battery")
    monkeypatch.setenv("SENSOR_TYPES", "speed,warp_drive")
    with pytest.raises(ConfigurationError, match=r"SENSOR_TYPES: unknown sensor type\(s\) warp"):
        load_settings(DemoSettings)


def test_overrides_come_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_BATCH", "7")
    assert load_settings(DemoSettings).demo_batch == 7
    assert load_settings(DemoSettings, overrides={"demo_batch": 9}).demo_batch == 9

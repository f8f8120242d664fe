"""Settings from the environment: names, defaults, comma-separated lists, secrets, limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ev_api.deps import get_settings
from ev_api.settings import Settings
from ev_schemas import DEFAULT_TYPES
from ev_service import ConfigurationError, load_settings
from ev_storage import StorageSettings

ENV_NAMES = [
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_KEY_PREFIX",
    "REDIS_SOCKET_TIMEOUT_S",
    "HISTORY_RETENTION_S",
    "API_HOST",
    "API_PORT",
    "API_KEYS",
    "SENSOR_TYPES",
    "HISTORY_DEFAULT_LIMIT",
    "HISTORY_MAX_LIMIT",
    "WS_QUEUE_SIZE",
    "LOG_LEVEL",
    "TRUSTED_PROXIES",
    "API_MAX_HEADER_BYTES",
    "WS_MAX_MESSAGE_BYTES",
    "WS_SEND_TIMEOUT_S",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert (settings.redis.host, settings.redis.port, settings.redis.db) == ("localhost", 6379, 0)
    assert settings.redis.password is None
    assert settings.redis.key_prefix == ""
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8000)
    assert settings.api_keys == ()
    assert not settings.auth_enabled
    assert settings.sensor_types == ()
    assert list(settings.catalogue()) == [t.name for t in DEFAULT_TYPES]
    assert (settings.history_default_limit, settings.history_max_limit) == (100, 1000)
    assert settings.ws_queue_size == 256
    assert settings.log_level == "info"
    assert (settings.redis.socket_timeout_s, settings.redis.retries) == (1.0, 2)
    assert settings.trusted_proxies == ()
    assert (settings.api_max_header_bytes, settings.ws_max_message_bytes) == (16384, 4096)
    assert settings.ws_send_timeout_s == 10.0
    assert settings.storage() == StorageSettings(history_retention=timedelta(days=7))


def test_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_HOST", "redis.internal")
    monkeypatch.setenv("REDIS_PORT", "6380")
    monkeypatch.setenv("REDIS_PASSWORD", "hunter2")
    monkeypatch.setenv("REDIS_DB", "3")
    monkeypatch.setenv("REDIS_KEY_PREFIX", "prod:")
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("API_PORT", "9000")
    monkeypatch.setenv("API_KEYS", " k1, k2 ,,")
    monkeypatch.setenv("SENSOR_TYPES", "speed,battery")
    monkeypatch.setenv("HISTORY_DEFAULT_LIMIT", "50")
    monkeypatch.setenv("HISTORY_MAX_LIMIT", "500")
    monkeypatch.setenv("WS_QUEUE_SIZE", "8")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT_S", "0.5")
    monkeypatch.setenv("HISTORY_RETENTION_S", "3600")
    settings = Settings()
    assert (settings.redis.host, settings.redis.port, settings.redis.db) == (
        "redis.internal",
        6380,
        3,
    )
    assert settings.redis.password is not None
    assert settings.redis.password.get_secret_value() == "hunter2"
    assert settings.redis.key_prefix == "prod:"
    assert (settings.api_host, settings.api_port) == ("0.0.0.0", 9000)
    assert [key.get_secret_value() for key in settings.api_keys] == ["k1", "k2"]
    assert settings.auth_enabled
    assert settings.sensor_types == ("speed", "battery")
    assert list(settings.catalogue()) == ["speed", "battery"]
    assert (settings.history_default_limit, settings.history_max_limit) == (50, 500)
    assert settings.ws_queue_size == 8
    assert settings.log_level == "debug"
    assert settings.redis.socket_timeout_s == 0.5
    assert settings.storage() == StorageSettings(
        key_prefix="prod:", history_retention=timedelta(hours=1)
    )


def test_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "hunter2")
    monkeypatch.setenv("API_KEYS", "topsecretkey")
    settings = Settings()
    assert "hunter2" not in repr(settings)
    assert "topsecretkey" not in repr(settings)
    assert "topsecretkey" not in str(settings.model_dump())


def test_empty_api_keys_turns_authentication_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", "")
    assert not Settings().auth_enabled


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SENSOR_TYPES", "battery,warp_drive", r"unknown sensor type\(s\) warp_drive"),
        ("HISTORY_DEFAULT_LIMIT", "2000", "exceeds HISTORY_MAX_LIMIT"),
        ("HISTORY_MAX_LIMIT", "0", "greater than or equal to 1"),
        ("WS_QUEUE_SIZE", "0", "greater than or equal to 1"),
        ("REDIS_PORT", "70000", "less than or equal to 65535"),
        ("LOG_LEVEL", "chatty", "Input should be"),
        ("REDIS_KEY_PREFIX", "has space", "key prefix"),
        ("HISTORY_RETENTION_S", "0", "greater than 0"),
    ],
)
def test_invalid_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"^{name}\\b.*{message}") as raised:
        load_settings(Settings)
    assert "\n" not in str(raised.value)


def test_empty_sensor_types_mean_every_built_in_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSOR_TYPES", " , ")
    assert list(Settings().catalogue()) == [t.name for t in DEFAULT_TYPES]


def test_get_settings_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    try:
        monkeypatch.setenv("API_PORT", "8123")
        first = get_settings()
        monkeypatch.setenv("API_PORT", "8124")
        assert get_settings() is first
        assert first.api_port == 8123
    finally:
        get_settings.cache_clear()

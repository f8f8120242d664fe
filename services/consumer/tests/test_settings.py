"""The consumer's settings: TLS variables that must fit together, and how they reach the clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ev_consumer.service import run
from ev_consumer.settings import ConsumerSettings
from ev_service import ConfigurationError, load_settings
from ev_service.amqp_env import RABBITMQ
from ev_storage import RedisSettings

AMQPS = "amqps://guest:guest@rabbit.internal:5671/%2F"


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("only its existence is checked here\n")
    return path


def test_amqp_tls_settings_reach_the_broker_settings() -> None:
    env = {"RABBITMQ_URLS": AMQPS, "RABBITMQ_TLS_SERVER_NAME": "rabbit-1.internal"}
    settings = ConsumerSettings(rabbitmq=RABBITMQ.load(env))
    amqp = settings.amqp("ev-consumer")
    assert amqp.tls is not None
    assert amqp.tls.server_name == "rabbit-1.internal"
    [params] = amqp.parameters()
    assert params.ssl_options.server_hostname == "rabbit-1.internal"
    assert settings.rabbitmq.uses_tls


def test_amqps_without_tls_settings_verifies_with_the_system_cas() -> None:
    settings = ConsumerSettings(rabbitmq=RABBITMQ.load({"RABBITMQ_URLS": AMQPS}))
    assert settings.rabbitmq.tls is None
    [params] = settings.amqp("ev-consumer").parameters()
    assert params.ssl_options.context.check_hostname is True


def test_amqp_tls_files_with_plain_urls_are_a_configuration_error(ca: Path) -> None:
    env = {"RABBITMQ_URLS": "amqp://guest:guest@rabbit/%2F", "RABBITMQ_TLS_CA_FILE": str(ca)}
    with pytest.raises(ConfigurationError, match="need amqps:// URLs"):
        RABBITMQ.load(env)


def test_the_process_exits_2_with_one_line_for_tls_files_with_plain_urls(
    ca: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RABBITMQ_URLS", "amqp://guest:guest@127.0.0.1:5672/%2F")
    monkeypatch.setenv("RABBITMQ_TLS_CA_FILE", str(ca))
    assert run() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("ev-consumer: invalid configuration: TLS settings need amqps:// URLs")


def test_redis_tls_files_without_redis_tls_are_refused(ca: Path) -> None:
    """Otherwise the consumer would talk to Redis in plain text, silently."""
    with pytest.raises(ValidationError, match="REDIS_TLS_\\* settings need REDIS_TLS=true"):
        ConsumerSettings(redis=RedisSettings(tls_ca_file=ca))
    with pytest.raises(ValidationError, match="go together"):
        ConsumerSettings(redis=RedisSettings(tls=True, tls_cert_file=ca))


def test_webhook_urls_need_a_secret_said_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALARM_WEBHOOK_URLS", "https://hooks.example/a?token=s3cr3t")
    monkeypatch.delenv("ALARM_WEBHOOK_SECRET", raising=False)
    assert run() == 2
    err = capsys.readouterr().err
    assert err == (
        "ev-consumer: invalid configuration: "
        "ALARM_WEBHOOK_SECRET is required when ALARM_WEBHOOK_URLS is set\n"
    )


@pytest.mark.parametrize(
    "urls", ["ftp://hooks.example/a", "hooks.example/a", "https://a.example, http:///x?k=s3cr3t"]
)
def test_webhook_urls_must_be_http_urls_with_a_host(
    urls: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALARM_WEBHOOK_URLS", urls)
    monkeypatch.setenv("ALARM_WEBHOOK_SECRET", "k")
    with pytest.raises(ConfigurationError, match="ALARM_WEBHOOK_URLS: URL") as caught:
        load_settings(ConsumerSettings)
    assert "s3cr3t" not in str(caught.value)


def test_webhook_urls_turn_the_alarm_outbox_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not ConsumerSettings().storage().alarm_outbox
    monkeypatch.setenv("ALARM_WEBHOOK_URLS", "http://a.example/x, https://b.example:8443/y")
    monkeypatch.setenv("ALARM_WEBHOOK_SECRET", "k")
    settings = load_settings(ConsumerSettings)
    assert settings.alarm_webhook_urls == ("http://a.example/x", "https://b.example:8443/y")
    assert settings.storage().alarm_outbox

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ev_messaging import AmqpSettings, MessagingError, TlsSettings, safe_url


def test_safe_url_masks_the_password_only() -> None:
    assert safe_url("amqp://bob:s3cret@rabbit:5672/%2F") == "amqp://bob:***@rabbit:5672/%2F"
    assert safe_url("amqps://[::1]:5671/v?heartbeat=5") == "amqps://[::1]:5671/v?heartbeat=5"
    assert safe_url("amqp://bob:pw@[::1]/v") == "amqp://bob:***@[::1]/v"


def test_repr_and_str_never_show_the_password() -> None:
    settings = AmqpSettings.from_parts("rabbit", 5672, "bob", "s3cret/@:", "/")
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings)
    assert settings.safe_urls == ("amqp://bob:***@rabbit:5672/%2F",)


def test_from_parts_quotes_what_urls_cannot_carry() -> None:
    settings = AmqpSettings.from_parts("rabbit", 5673, "bob", "p@ss:w/rd", "ev/prod")
    [params] = settings.parameters()
    assert (params.host, params.port, params.virtual_host) == ("rabbit", 5673, "ev/prod")
    assert params.credentials.username == "bob"
    assert params.credentials.password == "p@ss:w/rd"


def test_parameters_follow_the_settings_in_fail_over_order() -> None:
    settings = AmqpSettings(
        urls=("amqp://a:a@one:5672/%2F", "amqp://a:a@two:5672/%2F"),
        heartbeat=7,
        blocked_connection_timeout=9.0,
        client_name="ev-consumer",
    )
    params = settings.parameters()
    assert [p.host for p in params] == ["one", "two"]
    assert {p.heartbeat for p in params} == {7}
    assert {p.blocked_connection_timeout for p in params} == {9.0}
    assert params[0].client_properties == {"connection_name": "ev-consumer"}


@pytest.mark.parametrize(
    "urls", [(), "amqp://a:a@one/%2F", ("http://one/",)], ids=["empty", "a string", "http"]
)
def test_bad_urls_are_refused_without_echoing_them(urls: tuple[str, ...]) -> None:
    with pytest.raises(MessagingError):
        AmqpSettings(urls=urls)


def test_bad_retry_delays_are_refused() -> None:
    with pytest.raises(MessagingError):
        AmqpSettings(urls=("amqp://h/",), retry_delay=5, max_retry_delay=1)


def test_amqps_urls_verify_the_broker_even_without_tls_settings() -> None:
    [params] = AmqpSettings(urls=("amqps://a:a@rabbit:5671/%2F",)).parameters()
    assert params.ssl_options is not None
    assert params.ssl_options.context.verify_mode is ssl.CERT_REQUIRED
    assert params.ssl_options.context.check_hostname is True
    assert params.ssl_options.server_hostname is None  # pika then checks the URL's host


def test_the_server_name_is_what_the_certificate_must_carry() -> None:
    settings = AmqpSettings(
        urls=("amqps://a:a@10.0.0.5:5671/%2F", "amqps://a:a@10.0.0.6:5671/%2F"),
        tls=TlsSettings(server_name="rabbit.internal"),
    )
    params = settings.parameters()
    assert {p.ssl_options.server_hostname for p in params} == {"rabbit.internal"}
    # One context for every connection, read once.
    assert params[0].ssl_options.context is params[1].ssl_options.context


def test_plain_urls_have_no_tls() -> None:
    [params] = AmqpSettings(urls=("amqp://a:a@rabbit/%2F",)).parameters()
    assert params.ssl_options is None


def test_tls_settings_with_plain_urls_are_refused() -> None:
    with pytest.raises(MessagingError, match="need amqps:// URLs"):
        AmqpSettings(urls=("amqp://a:a@rabbit/%2F",), tls=TlsSettings(ca_file=Path("ca.pem")))


def test_a_fail_over_between_amqps_and_amqp_is_refused() -> None:
    with pytest.raises(MessagingError, match="mix amqps:// and amqp://"):
        AmqpSettings(urls=("amqps://a:a@one/%2F", "amqp://a:a@two/%2F"))


def test_tls_files_are_read_when_the_settings_are_made(tmp_path: Path) -> None:
    with pytest.raises(MessagingError, match="cannot load"):
        AmqpSettings(urls=("amqps://one/",), tls=TlsSettings(ca_file=tmp_path / "missing.pem"))


def test_pikas_ssl_options_url_argument_is_refused_not_ignored() -> None:
    url = "amqps://a:secret@rabbit:5671/%2F?ssl_options=%7B%27ca_certs%27%3A+%27ca.pem%27%7D"
    with pytest.raises(MessagingError, match="ssl_options in a URL is not supported") as raised:
        AmqpSettings(urls=(url,))
    assert "secret" not in str(raised.value)

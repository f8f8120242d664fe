from __future__ import annotations

import pytest

from ev_messaging import AmqpSettings, MessagingError, safe_url


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

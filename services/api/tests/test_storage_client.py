"""The Redis client's options from the settings: password, TLS, retries of refusals only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from _private_redis import PrivateRedis
from fastapi.testclient import TestClient
from pydantic import ValidationError
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ev_api import Settings
from ev_api.storage_client import pubsub_client, redis_client, redis_options


def test_plain_by_default(make_settings: Callable[..., Settings]) -> None:
    options = redis_options(make_settings(redis_password="pw"))
    assert options["password"] == "pw"
    assert "ssl" not in options
    # A timeout is not retried: a hung Redis costs one REDIS_SOCKET_TIMEOUT_S, not three.
    retry = options["retry"]
    assert retry._supported_errors == (redis_errors.ConnectionError,)


def test_tls_verified_with_a_ca_and_client_certificate(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-")
    options = redis_options(
        make_settings(
            redis_tls=True, redis_tls_ca_file=ca, redis_tls_cert_file=cert, redis_tls_key_file=key
        )
    )
    assert options["ssl"] is True
    assert (options["ssl_ca_certs"], options["ssl_certfile"], options["ssl_keyfile"]) == (
        str(ca),
        str(cert),
        str(key),
    )
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("required", True)


def test_tls_insecure_skips_verification(make_settings: Callable[..., Settings]) -> None:
    options = redis_options(make_settings(redis_tls=True, redis_tls_insecure=True))
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("none", False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"redis_tls_insecure": True}, "need REDIS_TLS=true"),
        ({"redis_tls": True, "redis_tls_ca_file": "/nonexistent/ca.pem"}, "does not point"),
        ({"redis_tls": True, "redis_tls_cert_file": __file__}, "go together"),
    ],
)
def test_inconsistent_tls_settings_are_refused(
    make_settings: Callable[..., Settings], fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(**fields)


def test_secrets_are_masked_in_the_settings_repr(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(redis_password="redis-pw", api_keys="key-one,key-two")
    text = repr(settings) + str(settings)
    assert "redis-pw" not in text
    assert "key-one" not in text


def test_password_used_and_never_logged(
    make_client: Callable[..., TestClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = PrivateRedis(tmp_path, password="the-Right-pw")
    server.start()
    try:
        at_server = {"redis_host": "127.0.0.1", "redis_port": server.port}
        good = make_client(**at_server, redis_password="the-Right-pw", api_keys="api-key-1")
        assert good.get("/health").status_code == 200
        wrong = make_client(**at_server, redis_password="a-Wrong-pw")
        assert wrong.get("/health").status_code == 503
        response = wrong.get("/api/v1/sensor/ev_001")
        assert (response.status_code, response.json()) == (503, {"detail": "storage unavailable"})
    finally:
        server.kill()
    assert "ev-api" in caplog.text  # the startup lines were captured
    for secret in ("the-Right-pw", "a-Wrong-pw", "api-key-1"):
        assert secret not in caplog.text


@pytest.mark.anyio
async def test_cluster_mode_builds_a_cluster_client_and_a_node_client_for_pubsub(
    make_settings: Callable[..., Settings],
) -> None:
    """Nothing connects here; tests/cluster runs the API on a real cluster."""
    settings = make_settings(redis_cluster=True, redis_db=0)
    client = redis_client(settings)
    live = pubsub_client(settings, client)
    try:
        assert isinstance(client, RedisCluster)
        assert type(live) is Redis
        assert live.connection_pool.connection_kwargs["port"] == settings.redis_port
    finally:
        await live.aclose()
        await client.aclose()
    single = redis_client(make_settings())
    assert pubsub_client(make_settings(), single) is single  # one server: the same client
    await single.aclose()


def test_a_cluster_has_database_zero_only(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValidationError, match="database 0 only"):
        make_settings(redis_cluster=True, redis_db=2)

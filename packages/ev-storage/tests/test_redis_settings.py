"""RedisSettings: the clients' options from one value object (password, TLS, retries, cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from redis import exceptions as redis_errors
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from ev_storage import RedisSettings, single_node


def test_plain_by_default() -> None:
    options = RedisSettings(password="pw").async_options("ev-api")
    assert (options["password"], options["client_name"]) == ("pw", "ev-api")
    assert "ssl" not in options
    # A request's timeout is not retried: a hung Redis costs one socket timeout, not three.
    assert options["retry"]._supported_errors == (redis_errors.ConnectionError,)
    assert options["decode_responses"] is False


def test_the_batch_writer_retries_timeouts_too() -> None:
    options = RedisSettings(retries=3, socket_timeout_s=0.5).sync_options()
    retry = options["retry"]
    assert retry._retries == 3
    assert redis_errors.TimeoutError in retry._supported_errors
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (0.5, 0.5)


def test_tls_verified_with_a_ca_and_client_certificate(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-")
    settings = RedisSettings(tls=True, tls_ca_file=ca, tls_cert_file=cert, tls_key_file=key)
    options = settings.client_options()
    assert options["ssl"] is True
    assert (options["ssl_ca_certs"], options["ssl_certfile"], options["ssl_keyfile"]) == (
        str(ca),
        str(cert),
        str(key),
    )
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("required", True)


def test_tls_insecure_skips_verification() -> None:
    options = RedisSettings(tls=True, tls_insecure=True).client_options()
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("none", False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tls_insecure": True}, "need REDIS_TLS=true"),
        ({"tls": True, "tls_ca_file": "/nonexistent/ca.pem"}, "does not point"),
        ({"tls": True, "tls_cert_file": __file__}, "go together"),
        ({"cluster": True, "db": 2}, "database 0 only"),
        ({"key_prefix": "bad prefix"}, "key prefix"),
        ({"port": 0}, "greater than or equal to 1"),
    ],
)
def test_inconsistent_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedisSettings.model_validate(fields)


def test_the_password_is_never_shown() -> None:
    settings = RedisSettings(password="redis-pw")
    assert "redis-pw" not in repr(settings) + str(settings)


@pytest.mark.anyio
async def test_cluster_mode_builds_a_cluster_client_and_node_clients() -> None:
    """Nothing connects here; tests/cluster runs the services on a real cluster."""
    settings = RedisSettings(cluster=True, port=7001)
    client = settings.async_client()
    node = settings.async_node_client()
    try:
        assert isinstance(client, AsyncRedisCluster)
        assert single_node(client) is None
        assert type(node) is AsyncRedis
        assert node.connection_pool.connection_kwargs["port"] == 7001
    finally:
        await node.aclose()
        await client.aclose()
    single = RedisSettings().async_client()
    assert single_node(single) is single
    await single.aclose()

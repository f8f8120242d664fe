"""The API's Redis clients from its settings (the options themselves are ev-storage's
``RedisSettings``, tested there): secrets never shown, a node client for pub/sub on a cluster."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from _private_redis import PrivateRedis
from fastapi.testclient import TestClient
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from ev_api import Settings
from ev_api.storage_client import pubsub_client, redis_client


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
        assert live.connection_pool.connection_kwargs["port"] == settings.redis.port
    finally:
        await live.aclose()
        await client.aclose()
    single = redis_client(make_settings())
    assert pubsub_client(make_settings(), single) is single  # one server: the same client
    await single.aclose()

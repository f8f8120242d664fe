"""Fixtures of the API's tests: the app on the real Redis, isolated by the root `key_prefix`."""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _private_redis import PrivateRedis
from fastapi.testclient import TestClient

from ev_api import Settings, create_app
from ev_storage import ReadingWriter, RedisSettings, StorageSettings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_location(redis_url: str) -> dict[str, Any]:
    """The test Redis as Settings fields."""
    url = urllib.parse.urlsplit(redis_url)
    db = url.path.strip("/")
    return {
        "redis_host": url.hostname or "127.0.0.1",
        "redis_port": url.port or 6379,
        "redis_db": int(db) if db else 0,
        "redis_password": url.password,
    }


@pytest.fixture
def make_settings(redis_location: dict[str, Any], key_prefix: str) -> Callable[..., Settings]:
    """Settings on the test Redis and prefix; keyword arguments override fields."""

    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            **redis_location,
            "redis_key_prefix": key_prefix,
            "redis_socket_timeout_s": 1.0,
            "api_keys": "",
        }
        fields.update(overrides)
        # REDIS_* overrides by their variable names: they fill ev-storage's RedisSettings.
        redis = {
            name.removeprefix("redis_"): fields.pop(name)
            for name in list(fields)
            if name.startswith("redis_")
        }
        return Settings(redis=RedisSettings(**redis), **fields)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start the app (lifespan included) with settings overrides; stopped after the test."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            return stack.enter_context(TestClient(create_app(make_settings(**overrides))))

        yield make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def writer(redis_client: redis.Redis, key_prefix: str) -> ReadingWriter:
    """Stores readings the way the consumer does (and publishes them on the live channel)."""
    return ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started redis-server of this test alone; killed afterwards."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def make_private_client(
    make_client: Callable[..., TestClient], private_redis: PrivateRedis
) -> Callable[..., TestClient]:
    """The app on the private Redis (prefix as usual); keyword arguments override settings."""

    def make(**overrides: Any) -> TestClient:
        fields: dict[str, Any] = {
            "redis_host": "127.0.0.1",
            "redis_port": private_redis.port,
            "redis_db": 0,
            "redis_password": private_redis.password,
        }
        fields.update(overrides)
        return make_client(**fields)

    return make

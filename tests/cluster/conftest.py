"""Fixtures of the scale-out tests: a private three-master Redis Cluster for the session, clients
of it, and a key prefix per test (the cluster is private and removed at the end: no cleanup)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio.cluster
import redis.cluster

from ev_storage import StorageSettings, async_client, sync_client
from tests.cluster.redis_cluster import PrivateRedisCluster


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    with PrivateRedisCluster() as cluster:
        yield cluster


@pytest.fixture
def cluster_prefix() -> str:
    return f"evtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def storage_settings(cluster_prefix: str) -> StorageSettings:
    return StorageSettings(key_prefix=cluster_prefix)


@pytest.fixture
def cluster_client(redis_cluster: PrivateRedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    host, port = redis_cluster.seed
    client = sync_client({"host": host, "port": port, "socket_timeout": 5}, cluster=True)
    assert isinstance(client, redis.cluster.RedisCluster)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def async_cluster_client(
    redis_cluster: PrivateRedisCluster,
) -> AsyncIterator[redis.asyncio.cluster.RedisCluster]:
    host, port = redis_cluster.seed
    client = async_client({"host": host, "port": port, "socket_timeout": 5}, cluster=True)
    assert isinstance(client, redis.asyncio.cluster.RedisCluster)
    try:
        yield client
    finally:
        await client.aclose()

"""Fixtures of the scale-out tests: a private three-master Redis Cluster for the session, clients
of it, and a key prefix per test (the cluster is private and removed at the end: no cleanup); a
private three-node RabbitMQ cluster per test that asks for one; and the figures a test wants
shown at the end of the run (``cluster_summary``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio.cluster
import redis.cluster

from ev_storage import StorageSettings, async_client, sync_client
from tests.cluster.rabbitmq_cluster import PrivateRabbitCluster
from tests.cluster.redis_cluster import PrivateRedisCluster

SUMMARY = pytest.StashKey[list[str]]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The lines tests added to ``cluster_summary``: shown without ``-s``, pass or fail."""
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.section("scale-out figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def cluster_summary(pytestconfig: pytest.Config) -> list[str]:
    """Append lines here for the end of the test run."""
    return pytestconfig.stash.setdefault(SUMMARY, [])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    with PrivateRedisCluster() as cluster:
        yield cluster


@pytest.fixture
def rabbit_cluster(tmp_path: Path) -> Iterator[PrivateRabbitCluster]:
    """Three fresh nodes: the test may kill and restart them. Every node is killed at the end,
    and its logs kept in the test's ``tmp_path`` (``rabbitmq-logs``)."""
    with PrivateRabbitCluster() as cluster:
        try:
            yield cluster
        finally:
            cluster.save_logs(tmp_path / "rabbitmq-logs")


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

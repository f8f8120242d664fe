"""Clients of one server or of a Redis Cluster from the same options (no cluster needed here:
tests/cluster runs the writer and reader on a real one)."""

from __future__ import annotations

import socket

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster

from ev_storage import (
    InvalidArgument,
    StorageUnavailable,
    async_client,
    check_connection,
    check_connection_async,
    sync_client,
)
from ev_storage.clients import cluster_options


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_cluster_options_keep_everything_but_database_zero() -> None:
    options = {"host": "h", "port": 1, "db": 0, "password": "pw", "socket_timeout": 2.0}
    assert cluster_options(options) == {
        "host": "h",
        "port": 1,
        "password": "pw",
        "socket_timeout": 2.0,
    }
    assert options["db"] == 0  # the caller's mapping is left alone


def test_a_cluster_has_database_zero_only() -> None:
    with pytest.raises(InvalidArgument, match="database 0 only"):
        cluster_options({"host": "h", "port": 1, "db": 3})


def test_single_server_clients_by_default() -> None:
    client = sync_client({"host": "127.0.0.1", "port": _closed_port()})
    assert type(client) is redis.Redis  # nothing connected yet
    client.close()


def test_a_cluster_without_any_answering_seed_is_unavailable() -> None:
    """redis-py's sync cluster client reads the slot map at construction."""
    with pytest.raises(StorageUnavailable, match="cannot be connected"):
        sync_client({"host": "127.0.0.1", "port": _closed_port()}, cluster=True)


@pytest.mark.anyio
async def test_async_clients_connect_on_first_use() -> None:
    options = {"host": "127.0.0.1", "port": _closed_port(), "socket_connect_timeout": 1}
    single = async_client(options)
    assert type(single) is redis.asyncio.Redis
    await single.aclose()
    cluster = async_client(options, cluster=True)
    assert type(cluster) is redis.asyncio.cluster.RedisCluster
    await cluster.aclose()


def test_checking_a_server_that_is_down_says_unavailable() -> None:
    """Not a certificate problem: services wait for it (tests/tls has the real handshakes)."""
    client = sync_client({"host": "127.0.0.1", "port": _closed_port()})
    with pytest.raises(StorageUnavailable):
        check_connection(client)
    client.close()


@pytest.mark.anyio
async def test_checking_asynchronously_a_server_that_is_down_says_unavailable() -> None:
    client = async_client({"host": "127.0.0.1", "port": _closed_port()})
    with pytest.raises(StorageUnavailable):
        await check_connection_async(client)
    await client.aclose()

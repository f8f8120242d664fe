"""Redis clients for one server or a Redis Cluster, built from the same options by the services.

The writer and the reader work unchanged on either: every key of a sensor shares the hash tag
``{<sensor_id>}``, so each write-script call and each multi-key read stays within one slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from ev_storage.errors import InvalidArgument, redis_errors_translated

SyncClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster
"""What :class:`~ev_storage.ReadingWriter` accepts."""
AsyncClient: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
"""What :class:`~ev_storage.ReadingReader` accepts."""
PubSubClient: TypeAlias = redis.asyncio.Redis
"""What :class:`~ev_storage.LiveFeed` accepts: a client of one server. On a cluster, a client of
one node: a ``PUBLISH`` reaches the subscribers of every node."""


def cluster_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` of a single-server client (``host``, ``port``, timeouts, TLS, ``retry``...)
    made fit for a cluster client, whose ``host`` and ``port`` are then a seed node.

    A cluster has database 0 only, so ``db`` must be absent or 0. ``retry`` becomes the cluster
    client's: redis-py retries a command (after refreshing its slot map) on connection errors,
    timeouts and a cluster that is down, whatever errors the retry object names.
    """
    result = dict(options)
    if result.pop("db", 0) not in (0, None):
        raise InvalidArgument("a Redis Cluster has database 0 only")
    return result


def sync_client(options: Mapping[str, Any], *, cluster: bool = False) -> SyncClient:
    """A synchronous client of one server, or of the cluster that ``host``:``port`` belongs to.

    A single-server client connects on first use. redis-py's synchronous cluster client reads
    the slot map at construction: with ``cluster`` this connects, and raises
    :class:`~ev_storage.StorageUnavailable` when no seed node answers or slots are uncovered.
    """
    if not cluster:
        return redis.Redis(**options)
    kwargs = cluster_options(options)
    with redis_errors_translated():
        return redis.cluster.RedisCluster(**kwargs)


def async_client(options: Mapping[str, Any], *, cluster: bool = False) -> AsyncClient:
    """An asynchronous client of one server, or of the cluster that ``host``:``port`` belongs to;
    either connects on first use."""
    if not cluster:
        return redis.asyncio.Redis(**options)
    return redis.asyncio.cluster.RedisCluster(**cluster_options(options))


def single_node(client: AsyncClient) -> PubSubClient | None:
    """``client`` when it talks to one server, None for a cluster client."""
    return client if isinstance(client, redis.asyncio.Redis) else None


def check_connection(client: SyncClient) -> None:
    """Connect and PING once: a start-up check that tells a server that is down (raises
    :class:`~ev_storage.StorageUnavailable`, which passes) from one whose TLS certificate does
    not verify (raises :class:`~ev_storage.TlsVerificationFailed`, which needs a human)."""
    with redis_errors_translated():
        client.ping()


async def check_connection_async(client: AsyncClient) -> None:
    """:func:`check_connection` for an asynchronous client."""
    with redis_errors_translated():
        await client.ping()

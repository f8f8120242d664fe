"""The process's Redis clients, built from ``settings.redis`` (ev-storage's ``RedisSettings``):
bounded timeouts, quick retries of refused connections only, a single server or a cluster."""

from __future__ import annotations

import asyncio

from ev_api.settings import Settings
from ev_storage import (
    AsyncClient,
    PubSubClient,
    StorageUnavailable,
    check_connection_async,
    single_node,
)

CLIENT_NAME = "ev-api"


def redis_client(settings: Settings) -> AsyncClient:
    """A request or a health check fails within about ``REDIS_SOCKET_TIMEOUT_S`` rather than
    hanging; on a cluster, redis-py also retries a timed-out command after refreshing its slot
    map."""
    return settings.redis.async_client(CLIENT_NAME)


def pubsub_client(settings: Settings, client: AsyncClient) -> PubSubClient:
    """The live hub's client: ``client`` itself on a single server. On a cluster, a plain client
    of the seed node: a PUBLISH reaches the subscribers of every node of a cluster, so one
    node's connection hears every sensor's channel. (The caller closes it if it is new.)"""
    node = single_node(client)
    return settings.redis.async_node_client(CLIENT_NAME) if node is None else node


async def check_redis_tls(settings: Settings) -> None:
    """Connect to Redis once: raises :class:`ev_storage.TlsVerificationFailed` when its
    certificate does not verify. A Redis that is down or slow is not an error here: the API
    starts and ``/health`` answers 503 until Redis is back."""
    client = redis_client(settings)
    try:
        async with asyncio.timeout(2 * settings.redis.socket_timeout_s):
            await check_connection_async(client)
    except (StorageUnavailable, TimeoutError):
        pass
    finally:
        await client.aclose()

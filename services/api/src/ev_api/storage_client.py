"""The process's Redis clients, built from the settings: timeouts, retries, password, TLS, and
a single server or a Redis Cluster (``REDIS_CLUSTER``)."""

from __future__ import annotations

import asyncio
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff

from ev_api.settings import Settings
from ev_storage import (
    AsyncClient,
    StorageUnavailable,
    async_client,
    check_connection_async,
    redis_tls_options,
)


def redis_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of :class:`redis.asyncio.Redis` for ``settings`` (secrets included:
    never log the result)."""
    password = settings.redis_password
    options: dict[str, Any] = {
        "host": settings.redis_host,
        "port": settings.redis_port,
        "db": settings.redis_db,
        "password": None if password is None else password.get_secret_value(),
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_socket_timeout_s,
        # Only refused or reset connections are retried, quickly: a Redis that does not answer
        # (a timeout) is not asked again, so a hung server costs one timeout, not three.
        "retry": Retry(
            EqualJitterBackoff(cap=0.1, base=0.01),
            retries=2,
            supported_errors=(redis_errors.ConnectionError,),
        ),
        "decode_responses": False,  # stored JSON is returned as bytes, untouched
        "client_name": "ev-api",
    }
    if settings.redis_tls:
        options.update(
            redis_tls_options(
                ca_file=settings.redis_tls_ca_file,
                cert_file=settings.redis_tls_cert_file,
                key_file=settings.redis_tls_key_file,
                insecure=settings.redis_tls_insecure,
            )
        )
    return options


def redis_client(settings: Settings) -> AsyncClient:
    """Bounded timeouts and quick, few retries, so a request or a health check fails within
    about ``REDIS_SOCKET_TIMEOUT_S`` rather than hanging. On a cluster, redis-py also retries
    a timed-out command (twice), after refreshing its slot map."""
    return async_client(redis_options(settings), cluster=settings.redis_cluster)


def pubsub_client(settings: Settings, client: AsyncClient) -> Redis:
    """The live hub's client: ``client`` itself on a single server. On a cluster, a plain client
    of the seed node: a PUBLISH reaches the subscribers of every node of a cluster, so one
    node's connection hears every sensor's channel. (The caller closes it if it is new.)"""
    if isinstance(client, Redis):
        return client
    return Redis(**redis_options(settings))


async def check_redis_tls(settings: Settings) -> None:
    """Connect to Redis once: raises :class:`ev_storage.TlsVerificationFailed` when its
    certificate does not verify. A Redis that is down or slow is not an error here: the API
    starts and ``/health`` answers 503 until Redis is back."""
    client = redis_client(settings)
    try:
        async with asyncio.timeout(2 * settings.redis_socket_timeout_s):
            await check_connection_async(client)
    except (StorageUnavailable, TimeoutError):
        pass
    finally:
        await client.aclose()

"""The process's one Redis client, built from the settings: timeouts, retries, password and TLS."""

from __future__ import annotations

from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff

from ev_api.settings import Settings


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
        verify = not settings.redis_tls_insecure
        options.update(
            ssl=True,
            ssl_ca_certs=_path(settings.redis_tls_ca_file),
            ssl_certfile=_path(settings.redis_tls_cert_file),
            ssl_keyfile=_path(settings.redis_tls_key_file),
            ssl_cert_reqs="required" if verify else "none",
            ssl_check_hostname=verify,
        )
    return options


def redis_client(settings: Settings) -> Redis:
    """Bounded timeouts and quick, few retries, so a request or a health check fails within
    about ``REDIS_SOCKET_TIMEOUT_S`` rather than hanging."""
    return Redis(**redis_options(settings))


def _path(value: object) -> str | None:
    return None if value is None else str(value)

"""How to reach Redis: one value object that builds the clients (in the manner of arq's
``RedisSettings``), for one server or a Redis Cluster, with TLS, timeouts and retries.

Services fill it from ``REDIS_*`` environment variables; this package never reads them.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)
from redis import exceptions as redis_errors
from redis.asyncio import Redis as _AsyncRedis
from redis.asyncio.retry import Retry as _AsyncRetry
from redis.backoff import EqualJitterBackoff, ExponentialWithJitterBackoff
from redis.retry import Retry

from ev_storage.clients import (
    AsyncClient,
    PubSubClient,
    SyncClient,
    async_client,
    sync_client,
)
from ev_storage.keys import check_prefix
from ev_storage.tls import redis_tls_options


class RedisSettings(BaseModel):
    """A Redis server (or a seed node of a cluster) and how to talk to it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    host: str = "localhost"
    """Redis host"""
    port: int = Field(default=6379, ge=1, le=65535)
    """Redis port"""
    password: SecretStr | None = None
    """Redis password"""
    db: int = Field(default=0, ge=0)
    """Redis database number"""
    key_prefix: str = ""
    """prefix before every key (several deployments on one Redis)"""
    cluster: bool = False
    """Redis Cluster: `REDIS_HOST`:`REDIS_PORT` is a seed node, the others are discovered;
    `REDIS_DB` must be 0 ([docs/scaling.md](docs/scaling.md))"""
    socket_timeout_s: float = Field(default=2.0, gt=0)
    """Redis connect and read timeout: a hung Redis becomes a 503 within it (api, rate limiter
    included) or a retried batch (consumer)"""
    retries: int = Field(default=1, ge=0, le=5)
    """quick redis-py retries of a call whose connection failed (the consumer's also of a timed-out
    one) before the caller's own backoff or answer"""
    tls: bool = False
    """TLS to Redis (see [docs/security.md](docs/security.md)); a certificate that does not
    verify exits 2 at start-up"""
    tls_ca_file: FilePath | None = None
    """CA bundle to verify Redis (system CAs if unset)"""
    tls_cert_file: FilePath | None = None
    """client certificate for Redis (with `REDIS_TLS_KEY_FILE`)"""
    tls_key_file: FilePath | None = None
    """client key for Redis (with `REDIS_TLS_CERT_FILE`)"""
    tls_insecure: bool = False
    """skip certificate checks (test servers only)"""

    @field_validator("key_prefix")
    @classmethod
    def _usable_prefix(cls, value: str) -> str:
        return check_prefix(value)  # InvalidKey is a ValueError: a validation error here

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.cluster and self.db:
            raise ValueError("a Redis Cluster has database 0 only: unset REDIS_DB")
        tls_files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        # A CA file without REDIS_TLS would otherwise connect in plain text, silently.
        if not self.tls and (self.tls_insecure or any(tls_files)):
            raise ValueError("REDIS_TLS_* settings need REDIS_TLS=true")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together")
        return self

    def client_options(self, client_name: str | None = None) -> dict[str, Any]:
        """Keyword arguments of ``redis.Redis`` (or its asyncio twin) without the retry policy;
        secrets included: never log the result."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "password": None if self.password is None else self.password.get_secret_value(),
            "socket_timeout": self.socket_timeout_s,
            "socket_connect_timeout": self.socket_timeout_s,
            "client_name": client_name,
        }
        if self.tls:
            options.update(
                redis_tls_options(
                    ca_file=self.tls_ca_file,
                    cert_file=self.tls_cert_file,
                    key_file=self.tls_key_file,
                    insecure=self.tls_insecure,
                )
            )
        return options

    def sync_client(self, client_name: str | None = None) -> SyncClient:
        """The batch writer's client: a lost connection or a timed-out call is retried
        ``retries`` times, 50-500 ms apart (a replayed pipeline of the idempotent write script is
        harmless), then the caller's own capped backoff takes over without blocking heartbeats
        or SIGTERM. A cluster client reads its slot map now:
        :class:`~ev_storage.StorageUnavailable` when no seed node answers."""
        return sync_client(self.sync_options(client_name), cluster=self.cluster)

    def sync_options(self, client_name: str | None = None) -> dict[str, Any]:
        """:meth:`client_options` with the batch writer's retry policy (see :meth:`sync_client`)."""
        options = self.client_options(client_name)
        options["health_check_interval"] = 30
        options["retry"] = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), self.retries)
        return options

    def async_client(self, client_name: str | None = None) -> AsyncClient:
        """A request handler's client: only refused or reset connections are retried
        (``retries`` times, 10-100 ms apart); a Redis that does not answer is not asked again,
        so a hung server costs one ``socket_timeout_s``, not several. On a cluster, redis-py
        also retries a timed-out command after refreshing its slot map. Connects on first use."""
        return async_client(self.async_options(client_name), cluster=self.cluster)

    def async_node_client(self, client_name: str | None = None) -> PubSubClient:
        """A client of the one node ``host``:``port``, cluster or not: for pub/sub, as a PUBLISH
        reaches the subscribers of every node of a cluster."""
        return _AsyncRedis(**self.async_options(client_name))

    def async_options(self, client_name: str | None = None) -> dict[str, Any]:
        """:meth:`client_options` with a request handler's retry policy (see
        :meth:`async_client`)."""
        options = self.client_options(client_name)
        options["retry"] = _AsyncRetry(
            EqualJitterBackoff(cap=0.1, base=0.01),
            retries=self.retries,
            supported_errors=(redis_errors.ConnectionError,),
        )
        options["decode_responses"] = False  # stored JSON is returned as bytes, untouched
        return options

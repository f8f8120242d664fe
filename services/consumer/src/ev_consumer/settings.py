"""The consumer's configuration, from environment variables (names in the README's table)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote

from pydantic import Field, FilePath, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ev_messaging import AmqpSettings, TlsSettings


class ConsumerSettings(BaseSettings):
    """Environment variables of the consumer; the seed's names first."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    redis_host: str = "localhost"
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_password: SecretStr | None = None
    redis_db: int = Field(default=0, ge=0)
    redis_key_prefix: str = ""
    #: REDIS_HOST:REDIS_PORT is a seed node of a Redis Cluster; the client finds the others.
    redis_cluster: bool = False
    #: Longest wait for one Redis reply; with REDIS_RETRIES it bounds a hung Redis's hold on a
    #: batch, and so how long SIGTERM may wait (well under its 10 s).
    redis_socket_timeout_s: float = Field(default=2.0, gt=0)
    #: redis-py's own quick retries after a lost connection or a timeout, before the consumer's
    #: capped backoff takes over.
    redis_retries: int = Field(default=1, ge=0, le=5)
    #: TLS to Redis; without a CA file the system's CAs verify the server.
    redis_tls: bool = False
    redis_tls_ca_file: FilePath | None = None
    redis_tls_cert_file: FilePath | None = None
    redis_tls_key_file: FilePath | None = None
    #: Skip certificate and host name checks (test servers only).
    redis_tls_insecure: bool = False
    rabbitmq_host: str = "localhost"
    rabbitmq_port: int = Field(default=5672, ge=1, le=65535)
    rabbitmq_user: str = "user"
    rabbitmq_pass: SecretStr = SecretStr("password")
    rabbitmq_vhost: str = "/"
    #: Comma-separated broker URLs tried in order; overrides the RABBITMQ_HOST/PORT/... parts.
    rabbitmq_urls: SecretStr | None = None
    #: AMQP heartbeat: a silent connection (half-open TCP) is given up after about twice this.
    rabbitmq_heartbeat_s: int = Field(default=30, ge=1, le=600)
    #: TLS of amqps:// URLs (RABBITMQ_URLS): the CA that signed the broker's certificate (else
    #: the system's CAs), a client certificate and key, and the name the broker's certificate
    #: must carry when it is not the URL's host. The broker is always verified.
    rabbitmq_tls_ca_file: FilePath | None = None
    rabbitmq_tls_cert_file: FilePath | None = None
    rabbitmq_tls_key_file: FilePath | None = None
    rabbitmq_tls_server_name: str | None = None

    sensor_types: str = ""
    consumer_prefetch: int = Field(default=1000, ge=1, le=65535)
    consumer_batch_size: int = Field(default=500, ge=1)
    #: Longest wait to fill a batch; short, because it adds directly to publish-to-API latency
    #: (a busy queue fills batches well before it anyway).
    consumer_batch_ms: float = Field(default=5.0, gt=0)
    delivery_limit: int = Field(default=10, ge=1)
    history_retention_s: int = Field(default=7 * 24 * 3600, gt=0)
    latest_ttl_s: int | None = Field(default=None, gt=0)
    summary_ttl_s: int | None = Field(default=None, gt=0)
    max_future_skew_s: float = Field(default=300.0, ge=0)
    log_level: str = "INFO"
    #: ``json``, ``text``, or ``auto``: text when stderr is a terminal, JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"

    #: Prometheus endpoint (any path, e.g. ``/metrics``) on this address and port; port 0: off.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    #: How often the metrics side polls the queue depths, on a connection of its own.
    metrics_queue_poll_s: float = Field(default=5.0, gt=0)
    #: Liveness: stamped every few seconds while the run loop goes round; ``--check`` reads it.
    consumer_heartbeat_file: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "ev-consumer.heartbeat"
    )
    #: ``--check`` fails when the run loop was last seen longer ago than this.
    consumer_heartbeat_max_age_s: float = Field(default=60.0, gt=0)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("redis_cluster")
    @classmethod
    def _cluster_has_db_zero(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("redis_db"):
            raise ValueError("a Redis Cluster has database 0 only: unset REDIS_DB")
        return value

    @model_validator(mode="after")
    def _redis_tls_consistent(self) -> Self:
        # A CA file without REDIS_TLS would otherwise connect in plain text, silently.
        tls_files = (self.redis_tls_ca_file, self.redis_tls_cert_file, self.redis_tls_key_file)
        if not self.redis_tls and (self.redis_tls_insecure or any(tls_files)):
            raise ValueError("REDIS_TLS_* settings need REDIS_TLS=true")
        if (self.redis_tls_cert_file is None) != (self.redis_tls_key_file is None):
            raise ValueError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together")
        return self

    def amqp_tls(self) -> TlsSettings | None:
        """The RABBITMQ_TLS_* settings, or None when none is set."""
        if not any(
            (
                self.rabbitmq_tls_ca_file,
                self.rabbitmq_tls_cert_file,
                self.rabbitmq_tls_key_file,
                self.rabbitmq_tls_server_name,
            )
        ):
            return None
        return TlsSettings(
            ca_file=self.rabbitmq_tls_ca_file,
            cert_file=self.rabbitmq_tls_cert_file,
            key_file=self.rabbitmq_tls_key_file,
            server_name=self.rabbitmq_tls_server_name,
        )

    def amqp(self, client_name: str) -> AmqpSettings:
        """The broker settings; raises :class:`ev_messaging.MessagingError` for TLS settings
        that do not fit the URLs (RABBITMQ_TLS_* with amqp:// URLs) or files that do not load."""
        return AmqpSettings(
            urls=self.amqp_urls(),
            heartbeat=self.rabbitmq_heartbeat_s,
            client_name=client_name,
            tls=self.amqp_tls(),
        )

    @property
    def uses_amqps(self) -> bool:
        return any(url.lower().startswith("amqps:") for url in self.amqp_urls())

    def amqp_urls(self) -> tuple[str, ...]:
        """Broker URLs, from RABBITMQ_URLS or assembled from the seed's variables."""
        if self.rabbitmq_urls is not None:
            urls = self.rabbitmq_urls.get_secret_value()
            return tuple(url.strip() for url in urls.split(",") if url.strip())
        user = quote(self.rabbitmq_user, safe="")
        password = quote(self.rabbitmq_pass.get_secret_value(), safe="")
        vhost = quote(self.rabbitmq_vhost, safe="")
        return (f"amqp://{user}:{password}@{self.rabbitmq_host}:{self.rabbitmq_port}/{vhost}",)

    def sensor_type_names(self) -> list[str] | None:
        """The configured types, or None for the whole default catalogue."""
        names = [name.strip() for name in self.sensor_types.split(",") if name.strip()]
        return names or None

    @property
    def history_retention(self) -> timedelta:
        return timedelta(seconds=self.history_retention_s)

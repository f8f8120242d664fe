"""The API's configuration, read from environment variables (names as in the README table)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ev_schemas import DEFAULT_TYPES, Catalogue, SchemaError, default_catalogue
from ev_storage import InvalidArgument, StorageSettings

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["auto", "json", "text"]


def _split_commas(value: object) -> object:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: list settings are comma-separated in the env."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Every setting of the service; unknown environment variables are ignored."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    redis_host: str = "localhost"
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_password: SecretStr | None = None
    redis_db: int = Field(default=0, ge=0)
    redis_key_prefix: str = ""
    #: REDIS_HOST:REDIS_PORT is a seed node of a Redis Cluster; the client finds the others.
    redis_cluster: bool = False
    #: TLS to Redis (``rediss``); the CA file verifies the server, cert and key prove the client.
    redis_tls: bool = False
    redis_tls_ca_file: FilePath | None = None
    redis_tls_cert_file: FilePath | None = None
    redis_tls_key_file: FilePath | None = None
    #: Skip certificate and host name verification: for a self-signed test server only.
    redis_tls_insecure: bool = False
    #: Seconds to connect or to wait for one reply; keeps /health and requests from hanging. A
    #: hung Redis costs a request one of these (the rate limiter's check included), so it is the
    #: time to a 503: 1 s by default (the API's replies are small; the consumer's default is 2 s).
    redis_socket_timeout_s: float = Field(default=1.0, gt=0)
    #: The storage's history retention, as the consumer has it (shared with ev-storage's reader).
    history_retention_s: int = Field(default=7 * 24 * 3600, gt=0)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    #: uvicorn's line per request. Off by default (as in gunicorn): /metrics counts every request
    #: by route and status, and a log line per request cost about 10% of the API's throughput.
    api_access_log: bool = False
    #: Accepted values of the X-API-Key header; empty turns authentication off.
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    #: Addresses or networks of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are
    #: believed (uvicorn's ``forwarded_allow_ips``); empty: those headers are ignored, the peer
    #: address is the client (for the per-address rate limit too).
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    #: Largest request head (request line and headers) read before answering 431.
    api_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    #: Largest WebSocket message a client may send (clients send nothing but control frames and
    #: small text); a larger one closes the connection with 1009 before it is buffered.
    ws_max_message_bytes: int = Field(default=4 * 1024, ge=125)
    #: Seconds a WebSocket's send may wait for the client to read before the client is dropped.
    ws_send_timeout_s: float = Field(default=10.0, gt=0)
    sensor_types: Annotated[tuple[str, ...], NoDecode] = tuple(t.name for t in DEFAULT_TYPES)
    history_default_limit: int = Field(default=100, ge=1)
    history_max_limit: int = Field(default=1000, ge=1)
    #: Live messages buffered per WebSocket client before it is dropped as too slow.
    ws_queue_size: int = Field(default=256, ge=1)
    #: Seconds between WebSocket pings (uvicorn answers with a close if no pong); 0: off.
    ws_ping_interval_s: float = Field(default=20.0, ge=0)
    #: Seconds to wait for the pong before closing the connection as dead.
    ws_ping_timeout_s: float = Field(default=20.0, gt=0)
    #: Requests per minute per API key (per client address without keys); 0 turns the limit off.
    rate_limit_per_minute: int = Field(default=0, ge=0)
    #: When Redis cannot count a request: allow it (true) or answer 503 (false).
    rate_limit_fail_open: bool = True
    log_level: LogLevel = "info"
    #: ``json``, ``text``, or ``auto``: text when stderr is a terminal, JSON otherwise.
    log_format: LogFormat = "auto"

    @field_validator("api_keys", "sensor_types", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is neither an IP address, a network (CIDR) nor '*'"
                ) from None
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("sensor_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one sensor type is needed")
        try:
            default_catalogue().restrict(value)
        except SchemaError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _limits_consistent(self) -> Self:
        if self.history_default_limit > self.history_max_limit:
            raise ValueError(
                f"HISTORY_DEFAULT_LIMIT ({self.history_default_limit}) exceeds "
                f"HISTORY_MAX_LIMIT ({self.history_max_limit})"
            )
        return self

    @field_validator("redis_key_prefix")
    @classmethod
    def _usable_prefix(cls, value: str) -> str:
        try:
            StorageSettings(key_prefix=value)
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _cluster_has_db_zero(self) -> Self:
        if self.redis_cluster and self.redis_db:
            raise ValueError("a Redis Cluster has database 0 only: unset REDIS_DB")
        return self

    @model_validator(mode="after")
    def _tls_consistent(self) -> Self:
        tls_files = (self.redis_tls_ca_file, self.redis_tls_cert_file, self.redis_tls_key_file)
        if not self.redis_tls and (self.redis_tls_insecure or any(tls_files)):
            raise ValueError("REDIS_TLS_* settings need REDIS_TLS=true")
        if (self.redis_tls_cert_file is None) != (self.redis_tls_key_file is None):
            raise ValueError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    def storage(self) -> StorageSettings:
        """What ev-storage needs to know: the key prefix and the history retention."""
        return StorageSettings(
            key_prefix=self.redis_key_prefix,
            history_retention=timedelta(seconds=self.history_retention_s),
        )

    def catalogue(self) -> Catalogue:
        """The configured sensor types, in the configured order."""
        return default_catalogue().restrict(self.sensor_types)

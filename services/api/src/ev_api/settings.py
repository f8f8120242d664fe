"""The API's configuration, read from environment variables (names as in the README table)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ev_service import SERVICE_CONFIG, AlarmRulesVar, LoggingVars, RetentionVar
from ev_service.redis_env import REDIS
from ev_storage import RedisSettings, StorageSettings


def _split_commas(value: object) -> object:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: list settings are comma-separated in the env."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(AlarmRulesVar, RetentionVar, LoggingVars):
    """Every setting of the service; unknown environment variables are ignored."""

    model_config = SERVICE_CONFIG | SettingsConfigDict(frozen=True)

    #: The API's Redis replies are small, and a hung Redis costs a request one timeout (the rate
    #: limiter's check included): 1 s to a 503 by default (the consumer waits 2 s for a batch).
    redis: RedisSettings = Field(default_factory=REDIS.factory(socket_timeout_s=1.0, retries=2))
    api_host: str = "127.0.0.1"
    """listen address"""
    api_port: int = Field(default=8000, ge=1, le=65535)
    """listen port"""
    api_access_log: bool = False
    """uvicorn's log line per request; off by default because `/metrics` counts every request by
    route and status, and the line costs about 10% of the API's throughput"""
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """comma-separated API keys; unset: no authentication"""
    api_admin_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """comma-separated admin keys, the only ones that may read and replace the alarm rules
    (`/api/v1/alarm-rules`); also accepted wherever an `API_KEYS` key is; unset: the rules API
    answers 403"""
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """comma-separated addresses or networks (CIDR, or `*`) of reverse proxies whose
    `X-Forwarded-For`/`-Proto` are believed (uvicorn's `forwarded_allow_ips`); unset: ignored,
    the peer is the client ([docs/security.md](docs/security.md#threats-and-their-bounds))"""
    api_max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    """largest request head (request line and headers); a longer one is answered 431"""
    ws_max_message_bytes: int = Field(default=4 * 1024, ge=125)
    """largest WebSocket message a client may send; a larger frame closes the connection (1009)
    before it is read"""
    ws_send_timeout_s: float = Field(default=10.0, gt=0)
    """how long a WebSocket send waits for a client that does not read; the client is then closed
    (1013 `client too slow: not reading`) and reset if it does not take the close as long again"""
    history_default_limit: int = Field(default=100, ge=1)
    """history page size when `limit` is not given"""
    history_max_limit: int = Field(default=1000, ge=1)
    """largest `limit` accepted"""
    ws_queue_size: int = Field(default=256, ge=1)
    """per-client WebSocket send queue; a client that falls this far behind is disconnected
    (1013)"""
    ws_ping_interval_s: float = Field(default=20.0, ge=0)
    """WebSocket ping interval; `0` turns pings off"""
    ws_ping_timeout_s: float = Field(default=20.0, gt=0)
    """close a WebSocket whose pong does not arrive in time"""
    rate_limit_per_minute: int = Field(default=0, ge=0)
    """requests per minute per API key (per client address without keys), counted in Redis
    across replicas; 429 with `Retry-After`; `0`: off"""
    rate_limit_fail_open: bool = True
    """with Redis down: allow and log (`true`) or answer 503 (`false`); a Redis that hangs is a
    503 either way, after one `REDIS_SOCKET_TIMEOUT_S`"""

    @field_validator("api_keys", "api_admin_keys", "trusted_proxies", mode="before")
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

    @model_validator(mode="after")
    def _limits_consistent(self) -> Self:
        if self.history_default_limit > self.history_max_limit:
            raise ValueError(
                f"HISTORY_DEFAULT_LIMIT ({self.history_default_limit}) exceeds "
                f"HISTORY_MAX_LIMIT ({self.history_max_limit})"
            )
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    @property
    def accepted_keys(self) -> tuple[SecretStr, ...]:
        """The keys the `/api/v1` routes accept: API_KEYS and API_ADMIN_KEYS (none: all open)."""
        return (*self.api_keys, *self.api_admin_keys) if self.api_keys else ()

    def storage(self) -> StorageSettings:
        """What ev-storage needs to know: the key prefix and the history retention."""
        return StorageSettings(
            key_prefix=self.redis.key_prefix, history_retention=self.history_retention
        )

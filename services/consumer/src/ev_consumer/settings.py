"""The consumer's configuration, from environment variables (the README's table is made from
this class: ``python -m ev_service.variables``)."""

from __future__ import annotations

import tempfile
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from ev_messaging import AmqpSettings
from ev_service import SERVICE_CONFIG, AlarmRulesVar, LoggingVars, RetentionVar
from ev_service.amqp_env import RABBITMQ, TopologyVars
from ev_service.redis_env import REDIS
from ev_storage import RedisSettings, StorageSettings


class ConsumerSettings(TopologyVars, AlarmRulesVar, RetentionVar, LoggingVars):
    """Environment variables of the consumer."""

    model_config = SERVICE_CONFIG

    redis: RedisSettings = Field(default_factory=REDIS.factory())
    rabbitmq: AmqpSettings = Field(default_factory=RABBITMQ.factory())
    consumer_prefetch: int = Field(default=1000, ge=1, le=65535)
    """unacknowledged deliveries per queue consumer"""
    consumer_batch_size: int = Field(default=500, ge=1)
    """readings per Redis pipeline and per acknowledgement"""
    consumer_batch_ms: float = Field(default=5.0, gt=0)
    """longest wait to fill a batch (adds to publish-to-API latency)"""
    latest_ttl_s: int | None = Field(default=None, gt=0)
    """expiry of latest keys (unset: none)"""
    summary_ttl_s: int | None = Field(default=None, gt=0)
    """expiry of summary keys (unset: none)"""
    max_future_skew_s: float = Field(default=300.0, ge=0)
    """how far ahead of the clock a timestamp may be"""
    metrics_host: str = "127.0.0.1"
    """address of the consumer's Prometheus endpoint (the image sets `0.0.0.0`)"""
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    """port of the consumer's Prometheus endpoint; `0` turns it off"""
    metrics_queue_poll_s: float = Field(default=5.0, gt=0)
    """how often the consumer's metrics poll the queue depths (own small connection)"""
    consumer_heartbeat_file: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "ev-consumer.heartbeat",
        json_schema_extra={"shown_default": "`<temp dir>/ev-consumer.heartbeat`"},
    )
    """liveness file stamped every few seconds while the consumer's loop runs; read by `--check`
    (one per consumer)"""
    consumer_heartbeat_max_age_s: float = Field(default=60.0, gt=0)
    """`python -m ev_consumer --check` fails when the heartbeat is older"""
    alarm_webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    """comma-separated `http(s)` URLs that get a signed JSON POST per alarm transition
    ([docs/alarms.md](docs/alarms.md#notifications)); empty: no notifications"""
    alarm_webhook_secret: SecretStr | None = None
    """HMAC-SHA256 key of the webhooks' `X-EV-Signature` header; required with
    `ALARM_WEBHOOK_URLS`"""

    @field_validator("alarm_webhook_urls", mode="before")
    @classmethod
    def _split_webhook_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("alarm_webhook_urls")
    @classmethod
    def _http_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for n, url in enumerate(value, 1):
            # The URL is not repeated: its path or query may hold a token.
            try:
                parts = urllib.parse.urlsplit(url)
                parts.port  # noqa: B018 - raises ValueError for a bad port
            except ValueError:
                raise ValueError(f"URL {n} is not a valid URL") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"URL {n} must be an http:// or https:// URL with a host")
        return value

    @model_validator(mode="after")
    def _webhook_secret_given(self) -> Self:
        if self.alarm_webhook_urls and not (
            self.alarm_webhook_secret and self.alarm_webhook_secret.get_secret_value()
        ):
            raise ValueError("ALARM_WEBHOOK_SECRET is required when ALARM_WEBHOOK_URLS is set")
        return self

    def amqp(self, client_name: str) -> AmqpSettings:
        """The broker settings under ``client_name``."""
        return self.rabbitmq.named(client_name)

    def storage(self) -> StorageSettings:
        """What the writer needs: key prefix, retention and expiries."""
        return StorageSettings(
            key_prefix=self.redis.key_prefix,
            history_retention=self.history_retention,
            latest_ttl=_seconds(self.latest_ttl_s),
            summary_ttl=_seconds(self.summary_ttl_s),
            alarm_outbox=bool(self.alarm_webhook_urls),
        )


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)

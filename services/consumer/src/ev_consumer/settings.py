"""The consumer's configuration, from environment variables (the README's table is made from
this class: ``python -m ev_service.variables``)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from pydantic import Field

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
        )


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)

"""``RABBITMQ_*``, ``SENSOR_TYPES`` and ``DELIVERY_LIMIT``: the environment variables of
ev-messaging's :class:`~ev_messaging.AmqpSettings` and of the topology (install
``ev-service[amqp]``)."""

from __future__ import annotations

from pydantic import Field

from ev_messaging import AmqpSettings, MessagingError, TopologySettings
from ev_service.environment import EnvGroup
from ev_service.shared import SensorTypesVar

_TLS_MEANINGS = {
    "tls.ca_file": "CA (PEM) to verify the broker of `amqps://` URLs (system CAs if unset); the "
    "broker is always verified ([docs/security.md](docs/security.md))",
    "tls.cert_file": "client certificate (PEM) for the broker (with `RABBITMQ_TLS_KEY_FILE`)",
    "tls.key_file": "client key (PEM) for the broker (with `RABBITMQ_TLS_CERT_FILE`)",
    "tls.server_name": "name the broker's certificate must carry when the URLs reach it under "
    "another one",
}

RABBITMQ = EnvGroup(
    AmqpSettings,
    names={
        "host": "RABBITMQ_HOST",
        "port": "RABBITMQ_PORT",
        "user": "RABBITMQ_USER",
        "password": "RABBITMQ_PASS",
        "vhost": "RABBITMQ_VHOST",
        "urls": "RABBITMQ_URLS",
        "heartbeat": "RABBITMQ_HEARTBEAT_S",
        "tls.ca_file": "RABBITMQ_TLS_CA_FILE",
        "tls.cert_file": "RABBITMQ_TLS_CERT_FILE",
        "tls.key_file": "RABBITMQ_TLS_KEY_FILE",
        "tls.server_name": "RABBITMQ_TLS_SERVER_NAME",
    },
    aliases={"RABBITMQ_URLS": ("RABBITMQ_URL",)},
    lists=frozenset({"urls"}),
    meanings=_TLS_MEANINGS,
    errors=(MessagingError,),
)
"""The seed's ``RABBITMQ_HOST``/``PORT``/``USER``/``PASS``, the vhost, ``RABBITMQ_URLS`` (or
``RABBITMQ_URL``), the heartbeat and ``RABBITMQ_TLS_*`` of :class:`ev_messaging.AmqpSettings`."""


class TopologyVars(SensorTypesVar):
    """``SENSOR_TYPES`` and ``DELIVERY_LIMIT``: what the queues are declared with, the same in
    every service that declares them."""

    delivery_limit: int = Field(default=10, ge=1)
    """deliveries before a message that keeps failing is dead-lettered to `ev.sensors.invalid`"""

    def topology(self) -> TopologySettings:
        """The exchange, queues and their arguments."""
        return TopologySettings.from_types(
            list(self.catalogue()), delivery_limit=self.delivery_limit
        )

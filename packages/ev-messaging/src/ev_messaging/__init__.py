"""RabbitMQ for EV fleet telemetry: topology, a pipelined confirming publisher, a batch consumer,
queue depths.

Nothing connects at import time; every class takes an :class:`AmqpSettings` value.
"""

from ev_messaging.__about__ import __version__
from ev_messaging.consumer import BatchConsumer, ConsumerStats
from ev_messaging.delivery import MAX_ERROR_LENGTH, BatchHandler, Delivery, Rejection
from ev_messaging.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConfirmTimeout,
    Fatal,
    MessagingError,
    NoBrokerAnswered,
    PublishNacked,
    QueueUnavailable,
    Retry,
    TlsVerificationFailed,
    TopologyError,
    Unroutable,
)
from ev_messaging.pika_logs import HandledPikaErrors, install_pika_log_filter
from ev_messaging.publisher import CONTENT_TYPE, Publisher, PublisherStats
from ev_messaging.queue_depths import QueueDepth, QueueDepths
from ev_messaging.settings import AmqpSettings, safe_url
from ev_messaging.tls import TlsSettings
from ev_messaging.topology import (
    DEFAULT_DELIVERY_LIMIT,
    EXCHANGE,
    HEADER_ERROR,
    HEADER_ROUTING_KEY,
    INVALID_QUEUE,
    ROUTING_KEY_PREFIX,
    UNROUTED_EXCHANGE,
    UNROUTED_QUEUE,
    TopologySettings,
    declare_topology,
    queue_arguments,
    routing_key,
    sensor_type_from_routing_key,
)

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_DELIVERY_LIMIT",
    "EXCHANGE",
    "HEADER_ERROR",
    "HEADER_ROUTING_KEY",
    "INVALID_QUEUE",
    "MAX_ERROR_LENGTH",
    "ROUTING_KEY_PREFIX",
    "UNROUTED_EXCHANGE",
    "UNROUTED_QUEUE",
    "AmqpSettings",
    "AuthenticationFailed",
    "BatchConsumer",
    "BatchHandler",
    "BrokerUnavailable",
    "ConfirmTimeout",
    "ConsumerStats",
    "Delivery",
    "Fatal",
    "HandledPikaErrors",
    "MessagingError",
    "NoBrokerAnswered",
    "PublishNacked",
    "Publisher",
    "PublisherStats",
    "QueueDepth",
    "QueueDepths",
    "QueueUnavailable",
    "Rejection",
    "Retry",
    "TlsSettings",
    "TlsVerificationFailed",
    "TopologyError",
    "TopologySettings",
    "Unroutable",
    "__version__",
    "declare_topology",
    "install_pika_log_filter",
    "queue_arguments",
    "routing_key",
    "safe_url",
    "sensor_type_from_routing_key",
]

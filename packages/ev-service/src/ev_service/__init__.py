"""Service wiring shared by the EV telemetry services (only services depend on it): settings
from environment variables for the packages' value objects, one-line configuration errors,
logging, and the table of every variable.

The Redis and RabbitMQ groups are in :mod:`ev_service.redis_env` and :mod:`ev_service.amqp_env`
(extras ``redis`` and ``amqp``), so the API installs no pika and the simulator no redis.
"""

from ev_service.__about__ import __version__
from ev_service.environment import ConfigurationError, EnvGroup, load_settings
from ev_service.logs import configure_logging
from ev_service.shared import (
    SERVICE_CONFIG,
    AlarmRulesVar,
    LogFormat,
    LoggingVars,
    LogLevel,
    RetentionVar,
    SensorTypesVar,
)

__all__ = [
    "SERVICE_CONFIG",
    "AlarmRulesVar",
    "ConfigurationError",
    "EnvGroup",
    "LogFormat",
    "LogLevel",
    "LoggingVars",
    "RetentionVar",
    "SensorTypesVar",
    "__version__",
    "configure_logging",
    "load_settings",
]

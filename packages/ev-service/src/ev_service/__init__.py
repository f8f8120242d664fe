"""Service wiring shared by the EV telemetry services (only services depend on it): settings
from environment variables for the packages' value objects, one-line configuration errors,
logging, and the table of every variable.
"""

from ev_service.__about__ import __version__
from ev_service.environment import ConfigurationError, EnvGroup, load_settings
from ev_service.logs import configure_logging
from ev_service.shared import (
    RABBITMQ,
    REDIS,
    SERVICE_CONFIG,
    LogFormat,
    LoggingVars,
    LogLevel,
    RetentionVar,
    SensorTypesVar,
    TopologyVars,
)

__all__ = [
    "RABBITMQ",
    "REDIS",
    "SERVICE_CONFIG",
    "ConfigurationError",
    "EnvGroup",
    "LogFormat",
    "LogLevel",
    "LoggingVars",
    "RetentionVar",
    "SensorTypesVar",
    "TopologyVars",
    "__version__",
    "configure_logging",
    "load_settings",
]

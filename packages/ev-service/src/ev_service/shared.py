"""Variables more than one service reads, declared once: the sensor types, the alarm rules
file, the history retention and logging (Redis and RabbitMQ are in :mod:`ev_service.redis_env`
and :mod:`ev_service.amqp_env`, so a service installs only the client it uses). A service's
settings class inherits the mixins it needs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ev_schemas import (
    AlarmRuleSet,
    Catalogue,
    InvalidAlarmRules,
    SchemaError,
    default_catalogue,
    load_alarm_rules,
)

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["auto", "json", "text"]

#: Every service's settings: case-insensitive names, unknown variables ignored, no .env file,
#: field docstrings as the descriptions of the variable table.
SERVICE_CONFIG = SettingsConfigDict(
    env_file=None, extra="ignore", case_sensitive=False, use_attribute_docstrings=True
)


def _commas(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class LoggingVars(BaseSettings):
    """``LOG_LEVEL`` and ``LOG_FORMAT``."""

    model_config = SERVICE_CONFIG

    log_level: LogLevel = "info"
    """log level"""
    log_format: LogFormat = "auto"
    """`json` (one object per line), `text`, or `auto`: text when stderr is a terminal, else JSON
    ([docs/operations.md](docs/operations.md#logs))"""

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lowercase_log_settings(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class SensorTypesVar(BaseSettings):
    """``SENSOR_TYPES``: the configured sensor types, checked against the built-in catalogue."""

    model_config = SERVICE_CONFIG

    sensor_types: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), json_schema_extra={"shown_default": "all built-in types"}
    )
    """comma-separated configured types (the simulator's `--declare-topology` declares these
    queues); unset or empty: every built-in type"""

    @field_validator("sensor_types", mode="before")
    @classmethod
    def _split_sensor_types(cls, value: object) -> object:
        return _commas(value)

    @field_validator("sensor_types")
    @classmethod
    def _known_sensor_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            if value:
                default_catalogue().restrict(value)
        except SchemaError as exc:
            raise ValueError(str(exc)) from None
        return value

    def catalogue(self) -> Catalogue:
        """The configured sensor types in the configured order, or every built-in one."""
        catalogue = default_catalogue()
        return catalogue.restrict(self.sensor_types) if self.sensor_types else catalogue


class RetentionVar(BaseSettings):
    """``HISTORY_RETENTION_S``: how much history the writer keeps and the reader may return."""

    model_config = SERVICE_CONFIG

    history_retention_s: int = Field(default=7 * 24 * 3600, gt=0)
    """history kept per sensor and type, relative to its newest reading (seconds)"""

    @property
    def history_retention(self) -> timedelta:
        return timedelta(seconds=self.history_retention_s)


class AlarmRulesVar(SensorTypesVar):
    """``ALARM_RULES_FILE``: the alarm rules, read and checked against the configured sensor types
    when the settings load, so a bad file stops the service at start-up in one line."""

    model_config = SERVICE_CONFIG

    alarm_rules_file: Path | None = None
    """alarm rules and staleness rules, YAML (`.yaml`, `.yml`) or JSON (`.json`)
    ([docs/alarms.md](docs/alarms.md#managing-rules)); a set stored through
    `PUT /api/v1/alarm-rules` takes precedence; unset: no rules until one is stored"""

    _alarm_rules: AlarmRuleSet = PrivateAttr(default_factory=AlarmRuleSet)

    @model_validator(mode="after")
    def _load_alarm_rules(self) -> Self:
        if self.alarm_rules_file is not None:
            try:
                self._alarm_rules = load_alarm_rules(self.alarm_rules_file, self.catalogue())
            except InvalidAlarmRules as exc:
                raise ValueError(f"ALARM_RULES_FILE: {exc}") from None
        return self

    def alarm_rules(self) -> AlarmRuleSet:
        """The file's rule set (empty without a file), as read when the settings loaded."""
        return self._alarm_rules

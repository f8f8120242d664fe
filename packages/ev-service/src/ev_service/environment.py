"""Environment variables -> settings: the packages' value objects filled from ``REDIS_*`` and
``RABBITMQ_*``, and every error said in one line that names the variable.

A package owns its settings model (``ev_storage.RedisSettings``, ``ev_messaging.AmqpSettings``):
fields, defaults, bounds, checks and their descriptions. An :class:`EnvGroup` only says which
environment variable fills which field, so each variable is declared once for every service.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings

M = TypeVar("M", bound=BaseModel)
S = TypeVar("S", bound=BaseSettings)


class ConfigurationError(Exception):
    """Settings that cannot be used; the text is one line naming the variables at fault."""

    def line(self, program: str) -> str:
        """What a service prints before it exits 2."""
        return f"{program}: invalid configuration: {self}"


@dataclass(frozen=True)
class EnvGroup(Generic[M]):
    """The environment variables of one settings model: ``names`` maps a field (``tls.ca_file``
    for a field of a nested model) to its variable; ``aliases`` are other names read for a
    variable when it is unset; ``lists`` are fields given as comma-separated values; ``meanings``
    describe fields that have no docstring of their own (those of a nested dataclass);
    ``errors`` are the model's own exceptions, said as configuration errors too."""

    model: type[M]
    names: Mapping[str, str]
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    lists: frozenset[str] = frozenset()
    meanings: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[type[Exception], ...] = ()

    def load(self, environ: Mapping[str, str] | None = None, **defaults: Any) -> M:
        """The model from ``environ`` (the process's environment); ``defaults`` replace the
        model's own for variables that are unset. Raises :class:`ConfigurationError`."""
        env = {key.upper(): value for key, value in (environ or os.environ).items()}
        data: dict[str, Any] = dict(defaults)
        for path, name in self.names.items():
            value = next((env[n] for n in (name, *self.aliases.get(name, ())) if n in env), None)
            if value is None:
                continue
            target = data
            *parents, leaf = path.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = _split(value) if path in self.lists else value
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(describe(exc, self.variable)) from None
        except self.errors as exc:
            raise ConfigurationError(str(exc)) from None

    def variable(self, path: str) -> str:
        """The variable of a field (``host`` -> ``REDIS_HOST``)."""
        return self.names.get(path, path.upper())

    def factory(self, **defaults: Any) -> GroupFactory[M]:
        """A ``default_factory`` for a service's settings field of this model."""
        return GroupFactory(self, defaults)


@dataclass(frozen=True)
class GroupFactory(Generic[M]):
    """Loads an :class:`EnvGroup` with a service's own defaults (the variable table reads both)."""

    group: EnvGroup[M]
    defaults: Mapping[str, Any]

    def __call__(self) -> M:
        return self.group.load(**self.defaults)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def describe(exc: ValidationError, variable: Callable[[str], str]) -> str:
    """pydantic's errors as ``NAME: reason; NAME: reason``, without the values (a password or a
    URL with one in it must not reach a log)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        reason = str(error["msg"]).removeprefix("Value error, ")
        path = ".".join(str(part) for part in error["loc"])
        parts.append(f"{variable(path)}: {reason}" if path else reason)
    return "; ".join(parts)


def settings_variable(settings: type[BaseSettings]) -> Callable[[str], str]:
    """The variable of a field of a service's settings (its ``env_prefix`` and name)."""
    prefix = str(settings.model_config.get("env_prefix", ""))

    def variable(path: str) -> str:
        return f"{prefix}{path.split('.')[0]}".upper()

    return variable


def load_settings(settings: type[S], overrides: Mapping[str, Any] | None = None) -> S:
    """``settings`` from the environment, ``overrides`` (command-line options) first; raises
    :class:`ConfigurationError` in one line."""
    try:
        return settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigurationError(describe(exc, settings_variable(settings))) from None

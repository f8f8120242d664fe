"""Errors of the simulator: one root, :class:`SimulatorError`."""

from __future__ import annotations

from ev_service import ConfigurationError as InvalidConfiguration


class SimulatorError(Exception):
    """Root of every error the simulator raises itself."""


class ConfigurationError(SimulatorError, InvalidConfiguration, ValueError):
    """Settings that cannot work together, e.g. an unknown sensor type or bad kind (printed
    like every service's invalid configuration: ``ev_service.ConfigurationError``)."""


class MissingExchange(SimulatorError):
    """The exchange to publish to does not exist: every further message would fail too."""

"""Errors of the simulator: one root, :class:`SimulatorError`."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of every error the simulator raises itself."""


class ConfigurationError(SimulatorError, ValueError):
    """Settings that cannot work together, e.g. an unknown sensor type or bad kind."""


class MissingExchange(SimulatorError):
    """The exchange to publish to does not exist: every further message would fail too."""

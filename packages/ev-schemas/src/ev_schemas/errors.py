"""Errors of ev-schemas: one root, :class:`SchemaError`."""

from __future__ import annotations


class SchemaError(Exception):
    """Root of every error this package raises."""


class InvalidReading(SchemaError):
    """A published reading that cannot be accepted; ``reason`` is fit for a log line or a header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason

"""What a deployment chooses about storage: key prefix, history retention, TTLs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ev_storage.errors import InvalidArgument
from ev_storage.keys import check_prefix

_MS = timedelta(milliseconds=1)


def whole_ms(span: timedelta) -> int:
    """``span`` in whole milliseconds (Redis expiries and our timestamps have that precision)."""
    return span // _MS


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Storage choices, passed in by services (which read them from the environment).

    ``history_retention`` bounds each history relative to its newest reading, and is also the
    history key's expiry, so a sensor that stops reporting ages out. ``latest_ttl`` and
    ``summary_ttl`` are optional expiries (None keeps those keys until deleted).
    """

    key_prefix: str = ""
    history_retention: timedelta = timedelta(days=7)
    latest_ttl: timedelta | None = None
    summary_ttl: timedelta | None = None

    def __post_init__(self) -> None:
        check_prefix(self.key_prefix)
        _check_span("history_retention", self.history_retention)
        if self.latest_ttl is not None:
            _check_span("latest_ttl", self.latest_ttl)
        if self.summary_ttl is not None:
            _check_span("summary_ttl", self.summary_ttl)

    @property
    def retention_ms(self) -> int:
        return whole_ms(self.history_retention)

    @property
    def latest_ttl_ms(self) -> int | None:
        return None if self.latest_ttl is None else whole_ms(self.latest_ttl)

    @property
    def summary_ttl_ms(self) -> int | None:
        return None if self.summary_ttl is None else whole_ms(self.summary_ttl)


def _check_span(name: str, span: object) -> None:
    if not isinstance(span, timedelta):
        raise InvalidArgument(f"{name} must be a timedelta, not {type(span).__name__}")
    if whole_ms(span) < 1:
        raise InvalidArgument(f"{name} must be at least 1 ms, got {span}")

"""What a deployment chooses about storage: key prefix, history retention and buckets, TTLs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ev_storage.errors import InvalidArgument
from ev_storage.keys import MAX_SHARDS, check_prefix

_MS = timedelta(milliseconds=1)
#: A record stores its offset in its bucket as an unsigned 32-bit integer of milliseconds.
MAX_HISTORY_BUCKET = timedelta(milliseconds=2**32)


def whole_ms(span: timedelta) -> int:
    """``span`` in whole milliseconds (Redis expiries and our timestamps have that precision)."""
    return span // _MS


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Storage choices, passed in by services (which read them from the environment).

    ``history_retention`` bounds each history relative to its newest reading, and is also the
    history key's expiry, so a sensor that stops reporting ages out. ``latest_ttl`` and
    ``summary_ttl`` are optional expiries (None keeps those keys until deleted).

    ``history_bucket`` is the time span packed into one field of a history hash. A write rewrites
    its bucket, so its cost grows with the readings per bucket, while the memory per reading
    grows when buckets hold few: about 50-200 readings per bucket is best (the default, 2
    minutes, holds 120 at 1 Hz; see docs/storage.md). It applies to histories created from then
    on: an existing history keeps the size it was created with (stored in it), so changing the
    setting is safe.

    ``catalogue_shards`` is the number of shards of the fleet catalogue (the index of sensors
    behind ``GET /sensors``), in 64 slots: about one per 100 sensors keeps every shard in Redis's
    compact encoding (the default, 1024, suits up to ~100,000 sensors). Writers and readers of
    one deployment must agree on it; changing it means rebuilding the catalogue
    (docs/storage.md).

    ``history_rollups`` keeps per-minute and per-quarter-hour aggregates in each history, updated
    by the same write (about 20% more Redis time per reading), so long-range aggregates read
    those instead of every reading. Off, the write drops them and aggregates read the readings.

    ``alarm_outbox`` also appends every alarm transition the writer and the staleness sweep
    index to the alarm outbox stream (``ev_storage.alarm_outbox``), for webhook notifications;
    off (the default), nothing is appended.
    """

    key_prefix: str = ""
    history_retention: timedelta = timedelta(days=7)
    latest_ttl: timedelta | None = None
    summary_ttl: timedelta | None = None
    history_bucket: timedelta = timedelta(minutes=2)
    catalogue_shards: int = 1024
    history_rollups: bool = True
    alarm_outbox: bool = False

    def __post_init__(self) -> None:
        check_prefix(self.key_prefix)
        _check_span("history_retention", self.history_retention)
        _check_span("history_bucket", self.history_bucket)
        if self.history_bucket > MAX_HISTORY_BUCKET:
            raise InvalidArgument(
                f"history_bucket must be at most {MAX_HISTORY_BUCKET}, got {self.history_bucket}"
            )
        shards = self.catalogue_shards
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
            raise InvalidArgument(
                f"catalogue_shards must be an integer 1-{MAX_SHARDS}, got {shards!r}"
            )
        if self.latest_ttl is not None:
            _check_span("latest_ttl", self.latest_ttl)
        if self.summary_ttl is not None:
            _check_span("summary_ttl", self.summary_ttl)

    @property
    def retention_ms(self) -> int:
        return whole_ms(self.history_retention)

    @property
    def history_bucket_ms(self) -> int:
        return whole_ms(self.history_bucket)

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

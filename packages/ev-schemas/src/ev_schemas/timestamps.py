"""UTC timestamps: millisecond precision, RFC 3339 with ``Z`` on the way out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def normalise(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to the millisecond (the precision readings are stored with)."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: a time zone is required")
    if offset or moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    sub_ms = moment.microsecond % 1000
    return moment.replace(microsecond=moment.microsecond - sub_ms) if sub_ms else moment


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; milliseconds only when there are any."""
    m = normalise(moment)
    # f-string formatting: several times faster than strftime, and this runs once per reading.
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if m.microsecond:
        return f"{text}.{m.microsecond // 1000:03d}Z"
    return text + "Z"

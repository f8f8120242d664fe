"""UTC timestamps: millisecond precision, RFC 3339 with ``Z`` on the way out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def normalise(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to the millisecond (the precision readings are stored with)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; milliseconds only when there are any."""
    moment = normalise(moment)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"

"""UTC timestamps: millisecond precision, RFC 3339 with ``Z`` on the way out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def normalise(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to the millisecond (the precision readings are stored with)."""
    if moment.tzinfo is not UTC:
        if moment.utcoffset() is None:
            raise ValueError("naive datetime: a time zone is required")
        moment = moment.astimezone(UTC)
    sub_ms = moment.microsecond % 1000
    return moment.replace(microsecond=moment.microsecond - sub_ms) if sub_ms else moment


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime."""
    since = moment - _EPOCH  # exact integer parts, cheaper than dividing timedeltas
    return (since.days * 86_400 + since.seconds) * 1000 + since.microseconds // 1000


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; milliseconds only when there are any."""
    m = normalise(moment)
    # isoformat is C code, several times faster than strftime or f-strings; this runs once per
    # reading. In UTC it ends with "+00:00".
    if m.microsecond:
        return m.isoformat(timespec="milliseconds")[:-6] + "Z"
    return m.isoformat(timespec="seconds")[:-6] + "Z"


_DAY_MS = 86_400_000


@lru_cache(maxsize=4096)
def _utc_date(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).date().isoformat()


def format_epoch_ms(ms: int) -> str:
    """``format_timestamp(from_epoch_ms(ms))`` without making a datetime (history pages format
    a thousand of these per request)."""
    day, in_day = divmod(ms, _DAY_MS)
    seconds, milli = divmod(in_day, 1000)
    hour, rest = divmod(seconds, 3600)
    minute, second = divmod(rest, 60)
    text = f"{_utc_date(day)}T{hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{milli:03d}Z" if milli else text + "Z"

"""UTC timestamps: millisecond precision, RFC 3339 with ``Z`` on the way out.

Client input reaches these functions, so none does datetime arithmetic that can overflow: an
aware datetime of years 1-9999 with any offset is counted from the epoch in whole numbers, and
one whose UTC time falls outside years 1-9999 (``0001-01-01T00:00:00+01:00``) is a
:class:`ValueError`, not an ``OverflowError``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_DAY = 86_400_000_000
#: Microseconds since the epoch of the first and last instants a UTC datetime can hold.
MIN_EPOCH_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
MAX_EPOCH_US = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def normalise(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to the millisecond (the precision readings are stored with).

    :class:`ValueError` for a naive datetime, or one whose UTC time is outside years 1-9999.
    """
    if moment.tzinfo is not UTC:
        if moment.utcoffset() is None:
            raise ValueError("naive datetime: a time zone is required")
        if not MIN_EPOCH_US <= to_epoch_us(moment) <= MAX_EPOCH_US:
            raise ValueError("date-time out of range: in UTC it is not within years 1-9999")
        moment = moment.astimezone(UTC)
    sub_ms = moment.microsecond % 1000
    return moment.replace(microsecond=moment.microsecond - sub_ms) if sub_ms else moment


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, any offset, years 1-9999."""
    # The difference of two aware datetimes is a timedelta of at most ~3.7 million days: it
    # cannot overflow, unlike adding an offset or a timedelta to a datetime near year 1 or 9999.
    since = moment - _EPOCH  # exact integer parts, cheaper than dividing timedeltas
    return since.days * _US_PER_DAY + since.seconds * 1_000_000 + since.microseconds


def to_epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime, rounded down (towards the past)."""
    since = moment - _EPOCH  # as in to_epoch_us; inlined, it runs once per stored reading
    return (since.days * 86_400 + since.seconds) * 1000 + since.microseconds // 1000


def to_epoch_ms_ceil(moment: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware datetime, rounded up (a reading at
    ``.000`` is before a lower bound at ``.0005``)."""
    return -(-to_epoch_us(moment) // 1000)


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

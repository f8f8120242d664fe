"""Aggregation intervals and the bucket boundaries they cut a time range into.

An interval is a whole number of one unit: ``s``, ``m``, ``h`` (fixed lengths, buckets aligned to
the Unix epoch, whatever the zone), ``d`` (calendar days) or ``w`` (ISO weeks, Monday to
Sunday). Days and weeks are counted in a time zone (IANA name, default UTC): a day bucket runs
from one local midnight to the next, so it lasts 23 or 25 hours across a DST change; ``nd``
buckets start on local dates ``n`` apart counted from 1970-01-01, ``nw`` ones on Mondays ``n``
weeks apart counted from 1969-12-29. There are no months: their lengths differ.

Everything is whole epoch milliseconds; boundaries before year 1 or after 9999 are clamped to
the instants a datetime can hold (they only occur for ranges at the very ends of the calendar).
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from ev_schemas.errors import SchemaError
from ev_schemas.timestamps import MAX_EPOCH_US, MIN_EPOCH_US, from_epoch_ms, to_epoch_ms

#: The most buckets one request may produce (``max_points`` is at most this too).
MAX_BUCKETS = 10_000
UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
#: The longest interval accepted: a year of 366 days, in any unit.
MAX_INTERVAL_MS = 366 * UNIT_MS["d"]
#: The "nice" intervals ``max_points`` chooses from, shortest first (as Grafana's).
LADDER: tuple[str, ...] = ("1s", "2s", "5s", "10s", "15s", "30s", "1m", "2m", "5m", "10m")
LADDER += ("15m", "30m", "1h", "2h", "3h", "6h", "12h", "1d", "1w")

_INTERVAL_RE = re.compile(r"([1-9][0-9]{0,7})([smhdw])")
#: The first and last whole milliseconds a datetime can hold (years 1-9999).
MIN_MS = -(-MIN_EPOCH_US // 1000)
MAX_MS = MAX_EPOCH_US // 1000
#: Day numbers (proleptic ordinals) of the first bucket of day and week intervals.
_DAY_ORIGIN = date(1970, 1, 1).toordinal()
_WEEK_ORIGIN = date(1969, 12, 29).toordinal()  # a Monday


class InvalidAggregation(SchemaError, ValueError):
    """A parameter of an aggregation that cannot be used; ``field`` names it (``interval``,
    ``tz``, ``max_points``, ``agg``, ``fill``), ``reason`` says why in a sentence."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field, self.reason = field, reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Interval:
    """``count`` of ``unit``; :meth:`parse` reads ``"15m"``. ``str()`` is the canonical text
    (``60s`` is ``1m``; days and weeks keep their unit, as their alignment differs)."""

    count: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Interval:
        match = _INTERVAL_RE.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidAggregation(
                "interval",
                f"unknown interval {text!r}: a whole number and a unit s, m, h, d or w "
                "(e.g. 10s, 5m, 1h, 1d, 1w)",
            )
        interval = cls(int(match[1]), match[2])
        if interval.ms > MAX_INTERVAL_MS:
            raise InvalidAggregation(
                "interval", f"interval {text.strip()!r} is longer than a year (366d, 52w at most)"
            )
        return interval.canonical()

    @property
    def ms(self) -> int:
        """The nominal length (a calendar day's real length depends on the zone)."""
        return self.count * UNIT_MS[self.unit]

    @property
    def calendar(self) -> bool:
        """Days and weeks: counted in the request's time zone."""
        return self.unit in ("d", "w")

    def canonical(self) -> Interval:
        if self.calendar:
            return self
        for unit in ("h", "m"):
            if self.ms % UNIT_MS[unit] == 0:
                return Interval(self.ms // UNIT_MS[unit], unit)
        return Interval(self.ms // 1000, "s")

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def parse_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name`` (``Europe/Berlin``, ``UTC``); :class:`InvalidAggregation` if the
    zone database has no such zone."""
    try:
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(name)
        return _zone(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise InvalidAggregation(
            "tz", f"unknown time zone {name!r}: an IANA name such as UTC or Europe/Berlin"
        ) from None


@dataclass(frozen=True, slots=True)
class Grid:
    """How ``interval`` cuts time into buckets in ``zone`` (days and weeks only; shorter
    intervals are aligned to the epoch in every zone)."""

    interval: Interval
    zone: zoneinfo.ZoneInfo

    def index(self, ms: int) -> int:
        """The number of the bucket holding instant ``ms``."""
        if not self.interval.calendar:
            return ms // self.interval.ms
        day = _local_date(ms, self.zone).toordinal()
        if self.interval.unit == "w":
            return (day - _WEEK_ORIGIN) // (7 * self.interval.count)
        return (day - _DAY_ORIGIN) // self.interval.count

    def start(self, index: int) -> int:
        """The first instant of bucket ``index`` (clamped to years 1-9999)."""
        if not self.interval.calendar:
            return min(max(index * self.interval.ms, MIN_MS), MAX_MS + 1)
        origin, days = (
            (_WEEK_ORIGIN, 7 * self.interval.count)
            if self.interval.unit == "w"
            else (_DAY_ORIGIN, self.interval.count)
        )
        ordinal = origin + index * days
        if ordinal <= 1:  # the first bucket a datetime can hold starts at its first instant
            return MIN_MS
        if ordinal > date.max.toordinal():
            return MAX_MS + 1
        midnight = datetime.combine(date.fromordinal(ordinal), datetime.min.time(), self.zone)
        # fold=0: a midnight that does not exist (a DST gap) is the instant the day starts, one
        # that exists twice is its first occurrence.
        return min(max(to_epoch_ms(midnight), MIN_MS), MAX_MS + 1)

    def count(self, start_ms: int, end_ms: int) -> int:
        """Buckets overlapping ``[start_ms, end_ms)``; 0 for an empty range."""
        if end_ms <= start_ms:
            return 0
        return self.index(end_ms - 1) - self.index(start_ms) + 1

    def boundaries(self, start_ms: int, end_ms: int) -> list[int]:
        """``b[0] <= start_ms < b[1] < ... < b[n-1] < end_ms <= b[n]`` for the n buckets
        overlapping ``[start_ms, end_ms)``; ``[]`` for an empty range. Build only after
        checking :meth:`count` against a bound."""
        if end_ms <= start_ms:
            return []
        first, last = self.index(start_ms), self.index(end_ms - 1)
        return [self.start(index) for index in range(first, last + 2)]


def _local_date(ms: int, zone: zoneinfo.ZoneInfo) -> date:
    """The calendar date in ``zone`` of instant ``ms``."""
    moment = from_epoch_ms(min(max(ms, MIN_MS), MAX_MS))
    try:
        return moment.astimezone(zone).date()
    except OverflowError:  # local time before year 1 or after 9999
        return date.min if ms < 0 else date.max


def choose_interval(
    max_points: int, zone: zoneinfo.ZoneInfo, start_ms: int, end_ms: int
) -> Interval:
    """The shortest :data:`LADDER` interval giving at most ``max_points`` buckets over
    ``[start_ms, end_ms)``; :class:`InvalidAggregation` when even a week gives more."""
    if isinstance(max_points, bool) or not 1 <= max_points <= MAX_BUCKETS:
        raise InvalidAggregation("max_points", f"max_points must be 1-{MAX_BUCKETS}")
    for text in LADDER:
        interval = Interval.parse(text)
        buckets = Grid(interval, zone).count(start_ms, end_ms)
        if buckets <= max_points:
            return interval
    raise InvalidAggregation(
        "max_points",
        f"max_points={max_points} is too small for the range: 1w, the longest interval it "
        f"chooses from, gives {buckets} buckets; raise max_points or give an interval",
    )


def check_bucket_count(grid: Grid, start_ms: int, end_ms: int) -> int:
    """The number of buckets, or :class:`InvalidAggregation` when it exceeds
    :data:`MAX_BUCKETS` (naming the shortest ladder interval that fits)."""
    buckets = grid.count(start_ms, end_ms)
    if buckets <= MAX_BUCKETS:
        return buckets
    fitting = next(
        (
            text
            for text in LADDER
            if Grid(Interval.parse(text), grid.zone).count(start_ms, end_ms) <= MAX_BUCKETS
        ),
        None,
    )
    advice = f"; use {fitting} or longer, or max_points" if fitting else "; use a longer one"
    raise InvalidAggregation(
        "interval",
        f"interval too small for the range: {grid.interval} gives {buckets} buckets, "
        f"at most {MAX_BUCKETS}{advice}",
    )


def utc_zone() -> zoneinfo.ZoneInfo:
    """The ``UTC`` zone, the default."""
    return _zone("UTC")


def clamp_ms(ms: int) -> int:
    """``ms`` within the instants a datetime holds: the end of a bucket of 9999-12-31 is
    shown as its last millisecond, as 10000-01-01 cannot be written."""
    return min(max(ms, MIN_MS), MAX_MS)

"""Time-bucketed aggregates of one series: what is asked (:class:`AggregationPlan`) and the fold
of readings into buckets (:class:`BucketFolder`), for any source of ascending readings.

Aggregators: ``avg``, ``min``, ``max``, ``count``, ``sum``, ``first`` and ``last`` (the values of
the earliest and newest reading of the bucket, by measurement time). ``sum`` is the exact sum of
the values rounded once (``math.fsum``), and ``avg`` that sum divided by the count, so both are
the same whatever order the readings are folded in and however they are grouped on the way: a
fold over raw history and one over partial sums kept elsewhere (rollups) agree bit for bit.

Empty buckets (``fill``): ``none`` leaves them out; ``null`` lists them with ``count`` 0 and
every other aggregate null; ``previous`` lists them with ``count`` 0 and the other aggregates of
the closest earlier non-empty bucket of the range (null before the first one).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ev_schemas.intervals import (
    Grid,
    Interval,
    InvalidAggregation,
    check_bucket_count,
    choose_interval,
    parse_zone,
)

AGGREGATORS = ("avg", "min", "max", "count", "sum", "first", "last")
FILLS = ("none", "null", "previous")
#: Values a bucket buffers before its sum is compacted to a few exact partials.
_SUM_BUFFER = 4096


def parse_aggregators(values: Iterable[str] | None) -> tuple[str, ...]:
    """The aggregators named by repeated and/or comma-separated values, in :data:`AGGREGATORS`
    order; all of them when ``values`` is None; :class:`InvalidAggregation` (``agg``) for an
    unknown name or none at all."""
    if values is None:
        return AGGREGATORS
    names = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(names.difference(AGGREGATORS))
    if unknown or not names:
        what = f"unknown aggregator(s) {', '.join(map(repr, unknown))}" if unknown else "no agg"
        raise InvalidAggregation("agg", f"{what}; choose from {', '.join(AGGREGATORS)}")
    return tuple(name for name in AGGREGATORS if name in names)


def parse_fill(text: str | None) -> str:
    """``none`` (the default), ``null`` or ``previous``; :class:`InvalidAggregation` otherwise."""
    if text is None:
        return "none"
    if text not in FILLS:
        raise InvalidAggregation("fill", f"unknown fill {text!r}; choose from {', '.join(FILLS)}")
    return text


@dataclass(frozen=True, slots=True)
class AggregationPlan:
    """A checked request: range ``[start_ms, end_ms)`` (end exclusive, like each bucket), the
    grid cutting it, the aggregators and the fill. :meth:`make` raises
    :class:`InvalidAggregation` naming the parameter at fault."""

    start_ms: int
    end_ms: int
    grid: Grid
    tz: str
    aggregators: tuple[str, ...]
    fill: str

    @classmethod
    def make(
        cls,
        start_ms: int,
        end_ms: int,
        *,
        interval: str | None = None,
        max_points: int | None = None,
        tz: str | None = None,
        agg: Iterable[str] | None = None,
        fill: str | None = None,
        default_max_points: int = 1000,
    ) -> AggregationPlan:
        """``interval`` or ``max_points`` (not both; neither: ``default_max_points``)."""
        zone = parse_zone("UTC" if tz is None else tz)
        if interval is not None and max_points is not None:
            raise InvalidAggregation("max_points", "give interval or max_points, not both")
        if interval is None:
            points = default_max_points if max_points is None else max_points
            chosen = choose_interval(points, zone, start_ms, end_ms)
        else:
            chosen = Interval.parse(interval)
        grid = Grid(chosen, zone)
        check_bucket_count(grid, start_ms, end_ms)
        return cls(start_ms, end_ms, grid, zone.key, parse_aggregators(agg), parse_fill(fill))

    @property
    def interval(self) -> Interval:
        return self.grid.interval

    def boundaries(self) -> list[int]:
        return self.grid.boundaries(self.start_ms, self.end_ms)


class ExactSum:
    """The sum of floats rounded once, in bounded memory: values are buffered and, past a few
    thousand, replaced by a few floats with exactly the same sum (:func:`exact_partials`)."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[float] = []

    def extend(self, values: Sequence[float]) -> None:
        self._parts += values
        if len(self._parts) > _SUM_BUFFER:
            self._parts = exact_partials(self._parts)

    def partials(self) -> list[float]:
        """Floats whose exact sum is the exact sum so far (what a rollup would keep)."""
        self._parts = exact_partials(self._parts)
        return list(self._parts)

    @property
    def value(self) -> float:
        return math.fsum(self._parts)


def exact_partials(values: Sequence[float]) -> list[float]:
    """Non-zero floats, largest first, whose exact sum equals that of ``values``.

    Each is the correctly rounded remainder of the ones before (``math.fsum``); the remainder
    shrinks by 2**-53 or more each time and the sum of floats is a multiple of 2**-1074, so
    this ends, after one to three rounds for ordinary data.
    """
    rest = list(values)
    parts: list[float] = []
    while part := math.fsum(rest):
        parts.append(part)
        rest.append(-part)
    return parts


@dataclass(slots=True)
class BucketValues:
    """One bucket: ``[start_ms, end_ms)`` and its aggregates (None when undefined)."""

    start_ms: int
    end_ms: int
    count: int = 0
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    sum: float | None = None
    first: float | None = None
    last: float | None = None

    def value(self, name: str) -> float | int | None:
        return getattr(self, name)  # type: ignore[no-any-return]


def lowest(values: Sequence[float]) -> float:
    """``min``, except that -0.0 is below 0.0 (IEEE 754 minimum), whatever their order."""
    low = min(values)
    if low == 0.0:
        low = min(values, key=_signed)
    return low


def highest(values: Sequence[float]) -> float:
    """``max``, except that 0.0 is above -0.0 (IEEE 754 maximum), whatever their order."""
    high = max(values)
    if high == 0.0:
        high = max(values, key=_signed)
    return high


def _signed(value: float) -> tuple[float, float]:
    return value, math.copysign(1.0, value)


def bucket_of_span(
    bounds: Sequence[int], range_ms: tuple[int, int], start_ms: int, end_ms: int
) -> int:
    """The index of the bucket (between ``bounds``) that holds ``[start_ms, end_ms)``;
    ValueError when the span is not inside one bucket of the range."""
    index = bisect.bisect_right(bounds, start_ms) - 1
    if not (
        0 <= index < len(bounds) - 1
        and end_ms <= bounds[index + 1]
        and range_ms[0] <= start_ms
        and end_ms <= range_ms[1]
    ):
        raise ValueError(f"[{start_ms}, {end_ms}) is not inside one bucket of the range")
    return index


@dataclass(frozen=True, slots=True)
class PartialAggregate:
    """The aggregates of a run of consecutive readings, kept elsewhere (a rollup): ``first`` and
    ``last`` are the values of its earliest and newest reading (at ``first_ms``, ``last_ms``),
    ``partials`` floats whose exact sum is the exact sum of its values (as
    :meth:`ExactSum.partials` gives)."""

    count: int
    min: float
    max: float
    first_ms: int
    first: float
    last_ms: int
    last: float
    partials: tuple[float, ...]


class _Accumulator:
    __slots__ = ("count", "first", "high", "last", "low", "total")

    def __init__(self, count: int, low: float, high: float, first: float, last: float) -> None:
        self.count, self.low, self.high, self.first, self.last = count, low, high, first, last
        self.total = ExactSum()

    @classmethod
    def of(cls, values: Sequence[float]) -> _Accumulator:
        held = cls(len(values), lowest(values), highest(values), values[0], values[-1])
        held.total.extend(values)
        return held

    @classmethod
    def of_partial(cls, part: PartialAggregate) -> _Accumulator:
        held = cls(part.count, part.min, part.max, part.first, part.last)
        held.total.extend(part.partials)
        return held

    def extend(self, values: Sequence[float]) -> None:
        self.count += len(values)
        self.low, self.high = lowest((self.low, *values)), highest((self.high, *values))
        self.last = values[-1]
        self.total.extend(values)

    def merge(self, part: PartialAggregate) -> None:
        self.count += part.count
        self.low, self.high = lowest((self.low, part.min)), highest((self.high, part.max))
        self.last = part.last
        self.total.extend(part.partials)


class BucketFolder:
    """Folds readings, given in ascending time order, into the buckets between
    ``boundaries`` (``b[i] <= ms < b[i+1]``); readings outside ``[start_ms, end_ms)`` (the
    range, which the first and last bucket may overhang) are ignored."""

    def __init__(self, boundaries: Sequence[int], start_ms: int, end_ms: int) -> None:
        self._bounds = list(boundaries)
        self._acc: list[_Accumulator | None] = [None] * max(0, len(self._bounds) - 1)
        self._range = (start_ms, end_ms)

    @classmethod
    def for_plan(cls, plan: AggregationPlan) -> BucketFolder:
        return cls(plan.boundaries(), plan.start_ms, plan.end_ms)

    def feed(self, times: Sequence[int], values: Sequence[float]) -> None:
        """One chunk of readings: ``times`` ascending, each later than the previous chunk's."""
        bounds, acc, n = self._bounds, self._acc, len(times)
        if not acc:
            return
        i = bisect.bisect_left(times, self._range[0])
        stop = bisect.bisect_left(times, self._range[1])
        while i < stop:
            index = bisect.bisect_right(bounds, times[i]) - 1
            j = min(bisect.bisect_left(times, bounds[index + 1], i, n), stop)
            part = values[i:j]
            held = acc[index]
            if held is None:
                acc[index] = _Accumulator.of(part)
            else:
                held.extend(part)
            i = j

    def feed_partial(self, start_ms: int, end_ms: int, part: PartialAggregate) -> None:
        """The readings of ``[start_ms, end_ms)`` as one :class:`PartialAggregate`, in time order
        with what is fed before and after (that span must lie in one bucket and in the range)."""
        index = bucket_of_span(self._bounds, self._range, start_ms, end_ms)
        held = self._acc[index]
        if held is None:
            self._acc[index] = _Accumulator.of_partial(part)
        else:
            held.merge(part)

    def feed_rows(self, rows: Iterable[tuple[int, str, float]]) -> None:
        """:meth:`feed` for history rows ``(ms, type, value)`` of one type."""
        rows = rows if isinstance(rows, list) else list(rows)
        self.feed([row[0] for row in rows], [row[2] for row in rows])

    def buckets(self, fill: str = "none") -> list[BucketValues]:
        """The buckets in time order, empty ones as ``fill`` says."""
        found: list[BucketValues] = []
        previous: BucketValues | None = None
        for index, held in enumerate(self._acc):
            start, end = self._bounds[index], self._bounds[index + 1]
            if held is not None:
                total = held.total.value
                avg = total / held.count
                previous = BucketValues(
                    start, end, held.count, avg, held.low, held.high, total, held.first, held.last
                )
                found.append(previous)
            elif fill == "null" or (fill == "previous" and previous is None):
                found.append(BucketValues(start, end))
            elif fill == "previous" and previous is not None:
                found.append(dataclasses.replace(previous, start_ms=start, end_ms=end, count=0))
        return found

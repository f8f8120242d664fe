"""Buckets over many series of one sensor type at once: the fleet-wide aggregate.

Each bucket combines the readings of every series (sensor) exactly as if they were one series:
``count`` and ``sum`` add up (the sum exact, rounded once), ``min`` and ``max`` are over all of
them, ``avg`` is the exact total over the count. ``first`` and ``last`` need an order across
series, where two sensors may report at the same millisecond: readings are ordered by
(timestamp, sensor id), so ``first`` is the value of the earliest reading (of the smallest id
among those at that millisecond) and ``last`` that of the newest (of the largest id).

A :class:`PartialBucket` holds the aggregates of some of a bucket's readings in a form that
merges without rounding (the sum as exact partials, first and last with their timestamp and
series), so series may be folded in any order, interleaved, or folded apart and merged.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Sequence

from ev_schemas.aggregation import (
    AggregationPlan,
    BucketValues,
    ExactSum,
    PartialAggregate,
    bucket_of_span,
    highest,
    lowest,
)

#: An end of a bucket's readings in the combined order: (ms, series, value).
Edge = tuple[int, str, float]


class PartialBucket:
    """Aggregates of some readings of one bucket, mergeable exactly with others of the same
    bucket (:meth:`merge`); :meth:`values` gives the bucket's answer."""

    __slots__ = ("count", "first", "high", "last", "low", "total")

    def __init__(
        self, count: int, low: float, high: float, total: ExactSum, first: Edge, last: Edge
    ) -> None:
        self.count, self.low, self.high, self.total = count, low, high, total
        self.first, self.last = first, last

    @classmethod
    def of(cls, series: str, times: Sequence[int], values: Sequence[float]) -> PartialBucket:
        """The readings ``values`` of ``series`` at ``times`` (ascending, at least one)."""
        total = ExactSum()
        total.extend(values)
        first, last = (times[0], series, values[0]), (times[-1], series, values[-1])
        return cls(len(values), lowest(values), highest(values), total, first, last)

    def copy(self) -> PartialBucket:
        total = ExactSum()
        total.extend(self.total.partials())
        return PartialBucket(self.count, self.low, self.high, total, self.first, self.last)

    def add(self, series: str, times: Sequence[int], values: Sequence[float]) -> None:
        """More readings of one series (``times`` ascending, at least one)."""
        self.count += len(values)
        self.low, self.high = lowest((self.low, *values)), highest((self.high, *values))
        self.total.extend(values)
        if (times[0], series) < self.first[:2]:
            self.first = (times[0], series, values[0])
        if (times[-1], series) > self.last[:2]:
            self.last = (times[-1], series, values[-1])

    def merge(self, other: PartialBucket) -> None:
        """Take in ``other``'s readings (none of which may also be in this one)."""
        self.count += other.count
        self.low, self.high = lowest((self.low, other.low)), highest((self.high, other.high))
        self.total.extend(other.total.partials())
        if other.first[:2] < self.first[:2]:
            self.first = other.first
        if other.last[:2] > self.last[:2]:
            self.last = other.last

    def partials(self) -> list[float]:
        """Floats whose exact sum is the exact sum of the values."""
        return self.total.partials()

    def values(self, start_ms: int, end_ms: int) -> BucketValues:
        total = self.total.value
        return BucketValues(
            start_ms,
            end_ms,
            self.count,
            total / self.count,
            self.low,
            self.high,
            total,
            self.first[2],
            self.last[2],
        )


class FleetFolder:
    """Folds readings of many series into the buckets between ``boundaries``, in any order of
    series and chunks (each chunk ascending, of one series); readings outside
    ``[start_ms, end_ms)`` are ignored. Memory grows with the buckets, not the series."""

    def __init__(self, boundaries: Sequence[int], start_ms: int, end_ms: int) -> None:
        self._bounds = list(boundaries)
        self._acc: list[PartialBucket | None] = [None] * max(0, len(self._bounds) - 1)
        self._range = (start_ms, end_ms)

    @classmethod
    def for_plan(cls, plan: AggregationPlan) -> FleetFolder:
        return cls(plan.boundaries(), plan.start_ms, plan.end_ms)

    def feed(self, series: str, times: Sequence[int], values: Sequence[float]) -> None:
        """One chunk of readings of ``series``: ``times`` ascending."""
        bounds, acc, n = self._bounds, self._acc, len(times)
        if not acc:
            return
        i = bisect.bisect_left(times, self._range[0])
        stop = bisect.bisect_left(times, self._range[1])
        while i < stop:
            index = bisect.bisect_right(bounds, times[i]) - 1
            j = min(bisect.bisect_left(times, bounds[index + 1], i, n), stop)
            held = acc[index]
            if held is None:
                acc[index] = PartialBucket.of(series, times[i:j], values[i:j])
            else:
                held.add(series, times[i:j], values[i:j])
            i = j

    def feed_partial(self, series: str, start_ms: int, end_ms: int, part: PartialAggregate) -> None:
        """The readings of ``series`` in ``[start_ms, end_ms)`` as one :class:`PartialAggregate`
        (a rollup; that span must lie in one bucket and in the range)."""
        index = bucket_of_span(self._bounds, self._range, start_ms, end_ms)
        total = ExactSum()
        total.extend(part.partials)
        first, last = (part.first_ms, series, part.first), (part.last_ms, series, part.last)
        other = PartialBucket(part.count, part.min, part.max, total, first, last)
        held = self._acc[index]
        if held is None:
            self._acc[index] = other
        else:
            held.merge(other)

    def feed_rows(self, series: str, rows: Iterable[tuple[int, str, float]]) -> None:
        """:meth:`feed` for history rows ``(ms, type, value)`` of one type."""
        rows = rows if isinstance(rows, list) else list(rows)
        self.feed(series, [row[0] for row in rows], [row[2] for row in rows])

    def merge(self, other: FleetFolder) -> None:
        """Take in the buckets of a folder of the same boundaries (other series)."""
        if other._bounds != self._bounds or other._range != self._range:
            raise ValueError("only folders of the same buckets and range merge")
        for index, held in enumerate(other._acc):
            if held is None:
                continue
            mine = self._acc[index]
            if mine is None:
                self._acc[index] = held.copy()
            else:
                mine.merge(held)

    def partial_buckets(self) -> list[PartialBucket | None]:
        """Each bucket's partial aggregates (None when empty), in time order."""
        return list(self._acc)

    def buckets(self, fill: str = "none") -> list[BucketValues]:
        """The buckets in time order, empty ones as ``fill`` says (as ``BucketFolder``'s)."""
        found: list[BucketValues] = []
        previous: BucketValues | None = None
        for index, held in enumerate(self._acc):
            start, end = self._bounds[index], self._bounds[index + 1]
            if held is not None:
                previous = held.values(start, end)
                found.append(previous)
            elif fill == "null" or (fill == "previous" and previous is None):
                found.append(BucketValues(start, end))
            elif fill == "previous" and previous is not None:
                found.append(dataclasses.replace(previous, start_ms=start, end_ms=end, count=0))
        return found

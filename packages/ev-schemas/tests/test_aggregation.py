"""Aggregators, fill, exact sums and the fold, against the straightforward reference."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import struct
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ev_schemas import (
    AGGREGATORS,
    MAX_BUCKETS,
    AggregateSeries,
    AggregationPlan,
    BucketFolder,
    BucketValues,
    ExactSum,
    Grid,
    Interval,
    InvalidAggregation,
    PartialAggregate,
    aggregate_series_json,
    to_epoch_ms,
)
from ev_schemas.aggregation import exact_partials, highest, lowest, parse_aggregators, parse_fill
from ev_schemas.testing import reference

T0 = to_epoch_ms(datetime(2026, 3, 27, tzinfo=UTC))
HOUR = 3_600_000


def fold(plan: AggregationPlan, readings: list[tuple[int, float]], cuts: list[int]) -> list[dict]:
    """The folder fed ``readings`` (sorted) in chunks cut at ``cuts``, as reference dicts."""
    ordered = sorted(readings)
    folder = BucketFolder.for_plan(plan)
    edges = [0, *sorted(cut % (len(ordered) + 1) for cut in cuts), len(ordered)]
    for low, high in itertools.pairwise(edges):
        part = ordered[low:high]
        folder.feed([ms for ms, _ in part], [value for _, value in part])
    return [
        {
            "start": bucket.start_ms,
            "end": bucket.end_ms,
            **{name: bucket.value(name) for name in AGGREGATORS},
        }
        for bucket in folder.buckets(plan.fill)
    ]


def test_aggregator_and_fill_parameters() -> None:
    assert parse_aggregators(None) == AGGREGATORS
    assert parse_aggregators(["max,avg", "count", " min "]) == ("avg", "min", "max", "count")
    assert parse_aggregators(["last,first,last"]) == ("first", "last")
    with pytest.raises(InvalidAggregation) as caught:
        parse_aggregators(["avg,median,p99"])
    assert caught.value.field == "agg"
    assert str(caught.value) == (
        "unknown aggregator(s) 'median', 'p99'; choose from avg, min, max, count, sum, first, last"
    )
    with pytest.raises(InvalidAggregation, match=r"^no agg; choose from avg"):
        parse_aggregators([" , "])
    assert parse_fill(None) == "none"
    assert [parse_fill(text) for text in ("none", "null", "previous")] == [
        "none",
        "null",
        "previous",
    ]
    with pytest.raises(InvalidAggregation, match="unknown fill 'linear'; choose from none, null"):
        parse_fill("linear")


def test_plan_checks_each_parameter() -> None:
    day = (T0, T0 + 24 * HOUR)
    plan = AggregationPlan.make(*day, interval="1h", tz="Europe/Berlin", agg=["max"], fill="null")
    assert (str(plan.interval), plan.tz, plan.aggregators, plan.fill) == (
        "1h", "Europe/Berlin", ("max",), "null",
    )  # fmt: skip
    assert str(AggregationPlan.make(*day).interval) == "2m"  # default max_points 1000
    assert str(AggregationPlan.make(*day, max_points=24).interval) == "1h"
    cases = {
        "interval": {"interval": "1y"},
        "tz": {"interval": "1d", "tz": "Nowhere/Land"},
        "max_points": {"interval": "1h", "max_points": 24},
        "agg": {"agg": ["mean"]},
        "fill": {"fill": "zero"},
    }
    for field, arguments in cases.items():
        with pytest.raises(InvalidAggregation) as caught:
            AggregationPlan.make(*day, **arguments)  # type: ignore[arg-type]
        assert caught.value.field == field
    with pytest.raises(InvalidAggregation, match="interval too small for the range: 1s gives"):
        AggregationPlan.make(T0, T0 + 7 * 24 * HOUR, interval="1s")


def test_exact_sum_is_the_same_in_any_order_and_grouping() -> None:
    values = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3] * 2000
    expected = math.fsum(values)
    assert expected != sum(values)
    for seed in range(5):
        shuffled = values[:]
        random.Random(seed).shuffle(shuffled)
        total = ExactSum()
        position = 0
        while position < len(shuffled):
            size = random.Random(seed + position).randint(1, 5000)
            total.extend(shuffled[position : position + size])
            position += size
        assert total.value == expected
        assert math.fsum(total.partials()) == expected
        assert len(total.partials()) <= 3


@given(
    st.lists(
        st.floats(
            allow_nan=False, allow_infinity=False, width=64, min_value=-1e300, max_value=1e300
        )
    )
)
def test_exact_partials_keep_the_exact_sum(values: list[float]) -> None:
    parts = exact_partials(values)
    assert math.fsum(parts) == math.fsum(values)
    assert 0.0 not in parts
    halves = exact_partials(values[: len(values) // 2])
    assert math.fsum(exact_partials([*halves, *values[len(values) // 2 :]])) == math.fsum(values)


def test_fill_modes() -> None:
    readings = [(T0 + 10, 1.0), (T0 + 20, 3.0), (T0 + 2 * HOUR + 5, 7.5)]
    answers = {}
    for fill in ("none", "null", "previous"):
        plan = AggregationPlan.make(T0 - HOUR, T0 + 4 * HOUR, interval="1h", fill=fill)
        answers[fill] = fold(plan, readings, [])
    assert [bucket["count"] for bucket in answers["none"]] == [2, 1]
    assert answers["none"][0] == {
        "start": T0, "end": T0 + HOUR, "count": 2, "avg": 2.0, "min": 1.0, "max": 3.0,
        "sum": 4.0, "first": 1.0, "last": 3.0,
    }  # fmt: skip
    assert [bucket["count"] for bucket in answers["null"]] == [0, 2, 0, 1, 0]
    assert answers["null"][0]["avg"] is None
    assert answers["null"][2]["last"] is None
    previous = answers["previous"]
    assert [bucket["count"] for bucket in previous] == [0, 2, 0, 1, 0]
    assert previous[0]["avg"] is None  # nothing earlier in the range
    assert previous[2] == {
        **answers["none"][0],
        "start": T0 + HOUR,
        "end": T0 + 2 * HOUR,
        "count": 0,
    }
    assert previous[4]["last"] == 7.5


@settings(max_examples=200, deadline=None)
@given(
    readings=st.dictionaries(
        st.integers(T0 - 3 * 24 * HOUR, T0 + 12 * 24 * HOUR),
        st.floats(-1e6, 1e6, allow_nan=False),
        max_size=300,
    ),
    start=st.integers(T0 - 4 * 24 * HOUR, T0 + 10 * 24 * HOUR),
    length=st.integers(0, 5 * 24 * HOUR),
    interval=st.sampled_from(["1s", "7s", "1m", "5m", "1h", "3h", "1d", "2d", "1w"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"]),
    fill=st.sampled_from(["none", "null", "previous"]),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_the_fold_equals_the_reference(
    readings: dict[int, float],
    start: int,
    length: int,
    interval: str,
    zone: str,
    fill: str,
    cuts: list[int],
) -> None:
    parsed_interval = Interval.parse(interval)
    grid = Grid(parsed_interval, ZoneInfo(zone))
    assume(grid.count(start, start + length) <= MAX_BUCKETS)
    plan = AggregationPlan.make(start, start + length, interval=interval, tz=zone, fill=fill)
    items = list(readings.items())
    parsed = (int(plan.interval.count), plan.interval.unit)
    expected = reference(items, start, start + length, parsed, zone, fill)
    assert fold(plan, items, cuts) == expected


def test_the_json_answer_is_the_models() -> None:
    plan = AggregationPlan.make(T0, T0 + 3 * HOUR, interval="1h", agg=["avg", "count"], fill="null")
    folder = BucketFolder.for_plan(plan)
    folder.feed([T0 + 1, T0 + 2], [0.25, 0.05])
    body = aggregate_series_json("ev_001", "battery", "percentage", plan, folder.buckets(plan.fill))
    answer = json.loads(body)
    assert answer["buckets"] == [
        {"start": "2026-03-27T00:00:00Z", "end": "2026-03-27T01:00:00Z", "avg": 0.15, "count": 2},
        {"start": "2026-03-27T01:00:00Z", "end": "2026-03-27T02:00:00Z", "avg": None, "count": 0},
        {"start": "2026-03-27T02:00:00Z", "end": "2026-03-27T03:00:00Z", "avg": None, "count": 0},
    ]  # fmt: skip
    model = AggregateSeries.model_validate_json(body)
    assert json.loads(model.model_dump_json(exclude_unset=True)) == answer
    assert (model.interval, model.tz, model.start_time.isoformat()) == (
        "1h", "UTC", "2026-03-27T00:00:00+00:00",
    )  # fmt: skip
    assert AggregateSeries.model_json_schema()["examples"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3599), st.floats(-1e9, 1e9, allow_nan=False)),
        unique_by=lambda item: item[0],
        max_size=80,
    ),
    st.integers(1, 7),
)
def test_partial_aggregates_fold_like_their_readings(
    readings: list[tuple[int, float]], run: int
) -> None:
    """Runs of readings folded as partial aggregates (what rollups keep) give the same buckets,
    bit for bit, as the readings themselves."""
    readings.sort()
    bounds = list(range(0, 3601, 600))
    whole, parts = BucketFolder(bounds, 0, 3600), BucketFolder(bounds, 0, 3600)
    whole.feed([ms for ms, _ in readings], [v for _, v in readings])
    start = 0
    while start < 3600:  # runs of at most `run` * 100 ms, never across a bucket boundary
        end = min(start + run * 100, (start // 600 + 1) * 600)
        values = [v for ms, v in readings if start <= ms < end]
        if values:
            total = ExactSum()
            total.extend(values)
            times = [ms for ms, _ in readings if start <= ms < end]
            part = PartialAggregate(
                len(values),
                lowest(values),
                highest(values),
                times[0],
                values[0],
                times[-1],
                values[-1],
                tuple(total.partials()),
            )
            parts.feed_partial(start, end, part)
        start = end
    assert [_bits(b) for b in parts.buckets("null")] == [_bits(b) for b in whole.buckets("null")]


def _bits(bucket: BucketValues) -> list[object]:
    """The bucket's fields, floats as their bytes (so -0.0 and 0.0 differ)."""
    return [
        struct.pack(">d", value) if isinstance(value, float) else value
        for value in dataclasses.astuple(bucket)
    ]


def test_a_partial_aggregate_must_lie_in_one_bucket_of_the_range() -> None:
    folder = BucketFolder([0, 60, 120], 10, 120)
    part = PartialAggregate(1, 1.0, 1.0, 70, 1.0, 70, 1.0, (1.0,))
    for start, end in [(0, 60), (50, 70), (60, 130)]:
        with pytest.raises(ValueError, match="not inside one bucket"):
            folder.feed_partial(start, end, part)
    folder.feed_partial(60, 120, part)
    assert [b.count for b in folder.buckets()] == [1]


def test_min_and_max_order_signed_zeros() -> None:
    for values in ([0.0, -0.0], [-0.0, 0.0], [0.0, 0.0, -0.0, 3.0]):
        assert math.copysign(1.0, lowest(values)) == -1.0
    for values in ([0.0, -0.0], [-0.0, 0.0], [-0.0, -5.0, 0.0]):
        assert math.copysign(1.0, highest(values)) == 1.0
    assert lowest([2.0, -1.0]) == -1.0
    assert highest([2.0, -1.0]) == 2.0

"""The fleet-wide fold and its exact merge, against the straightforward reference."""

from __future__ import annotations

import itertools
import json
import math
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ev_schemas import (
    AGGREGATORS,
    AggregationPlan,
    FleetAggregate,
    FleetAggregatePage,
    FleetFolder,
    Grid,
    Interval,
    PartialBucket,
    fleet_aggregate_json,
    fleet_aggregate_page_json,
    to_epoch_ms,
)
from ev_schemas.testing import fleet_reference

T0 = to_epoch_ms(datetime(2026, 3, 27, tzinfo=UTC))
HOUR = 3_600_000
Series = dict[str, dict[int, float]]


def chunks(series: Series, seed: int) -> list[tuple[str, list[int], list[float]]]:
    """Each series cut into ascending chunks, the chunks of all series interleaved at random
    (as concurrent reads deliver them: each series' chunks in order)."""
    rng = random.Random(seed)
    queues = []
    for name, readings in series.items():
        ordered = sorted(readings.items())
        cuts = sorted(rng.sample(range(len(ordered) + 1), min(3, len(ordered) + 1)))
        edges = [0, *cuts, len(ordered)]
        parts = [ordered[a:b] for a, b in itertools.pairwise(edges) if b > a]
        if parts:
            queues.append((name, parts))
    out = []
    while queues:
        index = rng.randrange(len(queues))
        name, parts = queues[index]
        part = parts.pop(0)
        out.append((name, [ms for ms, _ in part], [value for _, value in part]))
        if not parts:
            queues.pop(index)
    return out


def as_dicts(folder: FleetFolder, fill: str) -> list[dict[str, float | int | None]]:
    return [
        {"start": b.start_ms, "end": b.end_ms, **{name: b.value(name) for name in AGGREGATORS}}
        for b in folder.buckets(fill)
    ]


def series_strategy() -> st.SearchStrategy[Series]:
    # Few distinct milliseconds, so that sensors often report at the same one (ties).
    times = st.integers(T0 - 2 * 24 * HOUR, T0 + 5 * 24 * HOUR) | st.sampled_from(
        [T0, T0 + 1, T0 + HOUR]
    )
    readings = st.dictionaries(times, st.floats(-1e6, 1e6, allow_nan=False), max_size=60)
    ids = st.from_regex(r"[a-z]{1,3}_[0-9]{1,2}", fullmatch=True)
    return st.dictionaries(ids, readings, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    series=series_strategy(),
    seed=st.integers(0, 2**32),
    start=st.integers(T0 - 3 * 24 * HOUR, T0 + 4 * 24 * HOUR),
    length=st.integers(0, 4 * 24 * HOUR),
    interval=st.sampled_from(["1s", "7s", "1m", "1h", "3h", "1d", "1w"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    fill=st.sampled_from(["none", "null", "previous"]),
)
def test_the_fleet_fold_equals_the_reference(
    series: Series, seed: int, start: int, length: int, interval: str, zone: str, fill: str
) -> None:
    assume(Grid(Interval.parse(interval), ZoneInfo(zone)).count(start, start + length) <= 2000)
    plan = AggregationPlan.make(start, start + length, interval=interval, tz=zone, fill=fill)
    expected = fleet_reference(
        {name: list(readings.items()) for name, readings in series.items()},
        start,
        start + length,
        (plan.interval.count, plan.interval.unit),
        zone,
        fill,
    )
    folder = FleetFolder.for_plan(plan)
    for name, times, values in chunks(series, seed):
        folder.feed(name, times, values)
    assert as_dicts(folder, fill) == expected
    # Folded apart (each series alone, as per-sensor partials would be) and merged: the same.
    merged = FleetFolder.for_plan(plan)
    for name, times, values in chunks(series, seed + 1):
        alone = FleetFolder.for_plan(plan)
        alone.feed(name, times, values)
        merged.merge(alone)
    assert as_dicts(merged, fill) == expected


def test_ties_are_broken_by_sensor_id_and_sums_stay_exact() -> None:
    plan = AggregationPlan.make(T0, T0 + HOUR, interval="1h")
    folder = FleetFolder.for_plan(plan)
    folder.feed("b", [T0, T0 + 9], [1e16, 1.0])
    folder.feed("c", [T0 + 9], [-1e16])
    folder.feed("a", [T0, T0 + 5], [1.0, 0.5])
    (bucket,) = folder.buckets()
    assert (bucket.first, bucket.last) == (1.0, -1e16)  # "a" at T0 before "b"; "c" after "b"
    assert (bucket.count, bucket.sum, bucket.min, bucket.max) == (5, 2.5, -1e16, 1e16)
    assert bucket.avg == 2.5 / 5
    assert 1e16 + 1.0 - 1e16 + 1.0 + 0.5 != 2.5  # a float sum in feeding order would be off


def test_partial_buckets_merge_exactly_in_any_grouping() -> None:
    values = [1e16, 1.0, -1e16, 0.1, 0.2, 0.3] * 50
    parts = [PartialBucket.of(f"s{n:03d}", [T0 + n], [value]) for n, value in enumerate(values)]
    for seed in range(3):
        random.Random(seed).shuffle(parts)
        whole = parts[0].copy()
        for part in parts[1:]:
            whole.merge(part)
        answer = whole.values(T0, T0 + HOUR)
        assert answer.sum == math.fsum(values)
        assert math.fsum(whole.partials()) == math.fsum(values)
        assert (answer.count, answer.first, answer.last) == (300, 1e16, 0.3)
    assert parts[0].count == 1  # merging into a copy leaves the original alone


def test_only_folders_of_the_same_buckets_merge() -> None:
    hour = FleetFolder.for_plan(AggregationPlan.make(T0, T0 + HOUR, interval="1h"))
    minutes = FleetFolder.for_plan(AggregationPlan.make(T0, T0 + HOUR, interval="1m"))
    with pytest.raises(ValueError, match="same buckets"):
        hour.merge(minutes)


def test_the_json_answers_are_the_models() -> None:
    plan = AggregationPlan.make(T0, T0 + 2 * HOUR, interval="1h", agg=["avg", "count"], fill="null")
    folder = FleetFolder.for_plan(plan)
    folder.feed("ev_001", [T0 + 1], [0.25])
    folder.feed("ev_002", [T0 + 2], [0.05])
    buckets = folder.buckets(plan.fill)
    body = json.loads(fleet_aggregate_json("battery", "percentage", plan, 2, buckets))
    assert body == {
        "sensor_type": "battery",
        "unit": "percentage",
        "interval": "1h",
        "tz": "UTC",
        "fill": "null",
        "aggregators": ["avg", "count"],
        "start_time": "2026-03-27T00:00:00Z",
        "end_time": "2026-03-27T02:00:00Z",
        "sensors": 2,
        "buckets": [
            {"start": "2026-03-27T00:00:00Z", "end": "2026-03-27T01:00:00Z", "avg": 0.15,
             "count": 2},
            {"start": "2026-03-27T01:00:00Z", "end": "2026-03-27T02:00:00Z", "avg": None,
             "count": 0},
        ],
    }  # fmt: skip
    FleetAggregate.model_validate(body)
    page = fleet_aggregate_page_json(
        "battery", "percentage", plan, [("ev_001", buckets[:1]), ("ev_002", [])], "aTpldl8wMDI"
    )
    answer = json.loads(page)
    assert [item["sensor_id"] for item in answer["items"]] == ["ev_001", "ev_002"]
    assert answer["items"][0]["buckets"] == body["buckets"][:1]
    assert answer["next_cursor"] == "aTpldl8wMDI"
    assert FleetAggregatePage.model_validate(answer).items[1].buckets == []
    last = json.loads(fleet_aggregate_page_json("battery", "%", plan, [], None))
    assert last == {**json.loads(page), "unit": "%", "items": [], "next_cursor": None}


def test_the_answer_models_carry_examples() -> None:
    for model in (FleetAggregate, FleetAggregatePage):
        (example,) = model.model_config["json_schema_extra"]["examples"]  # type: ignore[index,call-overload]
        model.model_validate(example)

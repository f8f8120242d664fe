"""Aggregates from the stored history (``ev_storage.aggregate``) against the real Redis: the same
answer as a straightforward aggregation of the readings the history retains, whatever the
delivery order, duplicates, conflicts and retention trimming."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

import pytest
import redis
import redis.asyncio
from _storage_helpers import CATALOGUE, T0_MS, check_rollups, history_rows, make_reading
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ev_schemas import AGGREGATORS, MAX_BUCKETS, AggregationPlan, Grid, Interval
from ev_schemas.intervals import parse_zone
from ev_schemas.testing import reference
from ev_storage import KeyLayout, ReadingReader, ReadingWriter, StorageSettings, WriteOutcome
from ev_storage.aggregate import aggregate_history

pytestmark = pytest.mark.integration

HOUR = 3_600_000
RETENTION = timedelta(hours=2)
STORAGE = {"history_retention": RETENTION, "history_bucket": timedelta(seconds=30)}


def _as_dicts(buckets: list) -> list[dict]:  # type: ignore[type-arg]
    return [
        {"start": b.start_ms, "end": b.end_ms, **{name: b.value(name) for name in AGGREGATORS}}
        for b in buckets
    ]


def _retained(writes: list[tuple[int, float]]) -> dict[int, float]:
    """What the history keeps of ``writes`` stored in this order (docs/storage.md): the first
    value of each timestamp not older than the retention behind the newest at its write, then
    only the window behind the final newest."""
    kept: dict[int, float] = {}
    newest = None
    window = RETENTION // timedelta(milliseconds=1)
    for ms, value in writes:
        if newest is not None and ms < newest - window:
            continue  # EXPIRED
        kept.setdefault(ms, value)
        newest = ms if newest is None else max(newest, ms)
    return {ms: value for ms, value in kept.items() if newest is None or ms >= newest - window}


async def _aggregate(redis_url: str, prefix: str, sensor_id: str, plan: AggregationPlan) -> list:  # type: ignore[type-arg]
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        reader = ReadingReader(client, StorageSettings(key_prefix=prefix, **STORAGE), CATALOGUE)
        # A small chunk, so that buckets span chunks and chunks span buckets.
        return await aggregate_history(reader, sensor_id, "speed", plan, chunk=7)
    finally:
        await client.aclose()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 5 * HOUR), st.sampled_from([0.0, 1.5, 42.25, 99.9, 120.0])),
        max_size=120,
    ),
    copies=st.lists(st.integers(0, 119), max_size=30),
    seed=st.integers(0, 2**32),
    start=st.integers(-HOUR, 5 * HOUR),
    length=st.integers(0, 6 * HOUR),
    interval=st.sampled_from(["1s", "10s", "1m", "7m", "15m", "1h", "1d", "1w"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"]),
    fill=st.sampled_from(["none", "null", "previous"]),
    batch=st.integers(1, 50),
)
def test_aggregates_equal_the_reference_over_the_retained_history(
    redis_client: redis.Redis,
    redis_url: str,
    key_prefix: str,
    data: list[tuple[int, float]],
    copies: list[int],
    seed: int,
    start: int,
    length: int,
    interval: str,
    zone: str,
    fill: str,
    batch: int,
) -> None:
    # Around a DST change in Europe and the US (2024-03-10 / 03-31), the readings 5 hours long.
    base = T0_MS + 39 * 24 * HOUR
    start_ms = base + start
    grid = Grid(Interval.parse(interval), parse_zone(zone))
    assume(grid.count(start_ms, start_ms + length) <= MAX_BUCKETS)
    writes = [(base + offset, value) for offset, value in data]
    # Redeliveries (same value: duplicates) and conflicting copies (another value), shuffled.
    writes += [(writes[i][0], writes[i][1] + (i % 2)) for i in copies if i < len(writes)]
    random.Random(seed).shuffle(writes)
    sensor_id = f"agg_{uuid.uuid4().hex[:12]}"
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix, **STORAGE))
    for first in range(0, len(writes), batch):
        part = writes[first : first + batch]
        writer.store_many([make_reading(ms - T0_MS, v, "speed", sensor_id) for ms, v in part])
    retained = _retained(writes)
    key = KeyLayout(key_prefix).history(sensor_id, "speed")
    assert dict(history_rows(redis_client, key)) == retained  # the model of the history holds
    if retained:
        assert check_rollups(redis_client, key) is not None  # its rollups aggregate it exactly

    plan = AggregationPlan.make(start_ms, start_ms + length, interval=interval, tz=zone, fill=fill)
    answer = asyncio.run(_aggregate(redis_url, key_prefix, sensor_id, plan))
    expected = reference(
        sorted(retained.items()),
        start_ms,
        start_ms + length,
        (plan.interval.count, plan.interval.unit),
        zone,
        fill,
    )
    assert _as_dicts(answer) == expected


def test_readings_behind_the_window_are_left_out(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix, **STORAGE))
    old, new = [(0, 10.0), (HOUR, 20.0)], [(3 * HOUR, 30.0), (3 * HOUR + 1, 40.0)]
    readings = [make_reading(ms, v, "speed", "ev_agg") for ms, v in old + new]
    # The old ones first: stored, then trimmed when the new ones move the window past them.
    assert set(writer.store_many(readings)) == {WriteOutcome.STORED}
    late = writer.store_many([make_reading(30 * 60_000, 15.0, "speed", "ev_agg")])
    assert late == [WriteOutcome.EXPIRED]
    plan = AggregationPlan.make(T0_MS, T0_MS + 4 * HOUR, interval="1d", agg=["count", "sum"])
    (bucket,) = asyncio.run(_aggregate(redis_url, key_prefix, "ev_agg", plan))
    assert (bucket.count, bucket.sum, bucket.first, bucket.last) == (2, 70.0, 30.0, 40.0)


def test_an_empty_range_or_history_reads_nothing(redis_url: str, key_prefix: str) -> None:
    empty = AggregationPlan.make(T0_MS, T0_MS, interval="1h")
    assert asyncio.run(_aggregate(redis_url, key_prefix, "ev_none", empty)) == []
    plan = AggregationPlan.make(T0_MS, T0_MS + 2 * HOUR, interval="1h", fill="null")
    buckets = asyncio.run(_aggregate(redis_url, key_prefix, "ev_none", plan))
    assert [(b.count, b.avg) for b in buckets] == [(0, None), (0, None)]

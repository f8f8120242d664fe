"""Aggregates over many sensors (``ev_storage.fleet_aggregate``) against the real Redis: the
selection by catalogue filter and its bound, the combined series against the reference over
every sensor's readings, per-sensor series, and the bounded concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest
import redis.asyncio
from _storage_helpers import CATALOGUE, T0_MS, make_reading

from ev_schemas import AGGREGATORS, AggregationPlan, BucketValues
from ev_schemas.testing import fleet_reference
from ev_storage import (
    CatalogueFilter,
    CatalogueReader,
    ReadingReader,
    ReadingWriter,
    StorageSettings,
    StorageUnavailable,
    TooManySensors,
    aggregate_each,
    aggregate_history,
    fleet_aggregate,
    select_sensors,
)
from ev_storage.fleet_aggregate import for_each

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

HOUR = 3_600_000


def as_dicts(buckets: list[BucketValues]) -> list[dict[str, float | int | None]]:
    return [
        {"start": b.start_ms, "end": b.end_ms, **{name: b.value(name) for name in AGGREGATORS}}
        for b in buckets
    ]


@pytest.fixture
def fleet(writer: ReadingWriter) -> dict[str, list[tuple[int, float]]]:
    """bus_00 .. bus_11: speeds over three hours, some at the same milliseconds; ev_1 too."""
    rng = random.Random(7)
    series: dict[str, list[tuple[int, float]]] = {}
    readings = []
    for n in range(12):
        times = sorted({rng.randrange(0, 3 * HOUR, 1000) for _ in range(40)} | {0, HOUR})
        series[f"bus_{n:02d}"] = [(T0_MS + ms, rng.uniform(0, 130)) for ms in times]
        readings += [
            make_reading(ms - T0_MS, value, "speed", f"bus_{n:02d}")
            for ms, value in series[f"bus_{n:02d}"]
        ]
    readings.append(make_reading(10, 999.0 / 3, "speed", "ev_1"))
    rng.shuffle(readings)
    writer.store_many(readings)
    return series


@pytest.fixture
def catalogue(async_client: redis.asyncio.Redis, settings: StorageSettings) -> CatalogueReader:
    return CatalogueReader(async_client, settings, CATALOGUE)


async def test_the_combined_series_is_the_aggregate_of_every_sensors_readings(
    fleet: dict[str, list[tuple[int, float]]],
    reader: ReadingReader,
    catalogue: CatalogueReader,
) -> None:
    ids = await select_sensors(catalogue, CatalogueFilter(prefix="bus_"), limit=12)
    assert ids == sorted(fleet)
    for interval, fill in (("15m", "none"), ("1h", "null"), ("7s", "previous")):
        plan = AggregationPlan.make(T0_MS - HOUR, T0_MS + 3 * HOUR, interval=interval, fill=fill)
        expected = fleet_reference(
            fleet, plan.start_ms, plan.end_ms, (plan.interval.count, plan.interval.unit),
            "UTC", fill,
        )  # fmt: skip
        for concurrency in (1, 3, 50):
            got = await fleet_aggregate(reader, ids, "speed", plan, concurrency=concurrency)
            assert as_dicts(got) == expected
    # Every sensor starts at T0 and at T0 + 1 h: the first of those buckets is bus_00's.
    plan = AggregationPlan.make(T0_MS, T0_MS + 2 * HOUR, interval="1h", agg=["first", "last"])
    first_hour = (await fleet_aggregate(reader, ids, "speed", plan, chunk=5))[0]
    assert first_hour.first == fleet["bus_00"][0][1]


async def test_rollups_combine_across_sensors_as_their_readings_do(
    fleet: dict[str, list[tuple[int, float]]], reader: ReadingReader
) -> None:
    """Through the rollups (minutes and quarter hours, first and last with their time and
    sensor) the combined series is the one folded from every reading, bit for bit."""
    ids = sorted(fleet)
    for interval in ("1m", "15m", "1h", "1d"):
        plan = AggregationPlan.make(T0_MS - HOUR, T0_MS + 3 * HOUR + 7, interval=interval)
        fast = await fleet_aggregate(reader, ids, "speed", plan)
        slow = await fleet_aggregate(reader, ids, "speed", plan, use_rollups=False)
        assert [dataclasses.astuple(b) for b in fast] == [dataclasses.astuple(b) for b in slow]
        assert sum(b.count for b in fast) == sum(len(readings) for readings in fleet.values())


async def test_per_sensor_series_are_each_sensors_aggregate(
    fleet: dict[str, list[tuple[int, float]]], reader: ReadingReader
) -> None:
    plan = AggregationPlan.make(T0_MS, T0_MS + 3 * HOUR, interval="30m")
    ids = ["bus_03", "ev_1", "bus_00", "nobody"]
    each = await aggregate_each(reader, ids, "speed", plan, concurrency=2)
    for sensor_id, buckets in zip(ids, each, strict=True):
        assert buckets == await aggregate_history(reader, sensor_id, "speed", plan)
    assert each[3] == []
    assert [b.count for b in each[1]] == [1]


async def test_a_filter_selecting_too_many_says_how_many(
    fleet: dict[str, list[tuple[int, float]]], catalogue: CatalogueReader
) -> None:
    with pytest.raises(TooManySensors) as caught:
        await select_sensors(catalogue, CatalogueFilter(sensor_type="speed"), limit=5)
    assert (caught.value.selected, caught.value.limit) == (13, 5)
    assert str(caught.value) == "the filter selects 13 sensors, more than 5"
    assert await select_sensors(catalogue, CatalogueFilter(prefix="ev_"), limit=1) == ["ev_1"]
    assert await select_sensors(catalogue, CatalogueFilter(sensor_type="battery"), limit=5) == []


async def test_for_each_bounds_concurrency_and_raises_the_first_failure() -> None:
    running, peak, done = 0, 0, []

    async def work(item: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        done.append(item)

    await for_each(range(40), work, 4)
    assert (peak, sorted(done)) == (4, list(range(40)))

    started = []

    async def failing(item: int) -> None:
        started.append(item)
        if item == 2:
            raise StorageUnavailable("redis went away")
        await asyncio.sleep(10)

    with pytest.raises(StorageUnavailable, match="redis went away"):
        await asyncio.wait_for(for_each(range(100), failing, 3), timeout=5)
    assert len(started) == 3  # the others were cancelled, none started after the failure
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        await for_each([1], work, 0)

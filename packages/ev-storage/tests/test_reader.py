"""Reads against the real Redis: latest bytes, history pages and cursors, summaries, ping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest
import redis
import redis.asyncio
from _storage_helpers import CATALOGUE, SENSOR, T0, T0_MS, make_reading
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ev_schemas import Reading
from ev_storage import (
    InvalidArgument,
    InvalidCursor,
    InvalidKey,
    Position,
    ReadingReader,
    ReadingWriter,
    StorageError,
    StorageSettings,
    StorageUnavailable,
    UnknownSensorType,
    encode_cursor,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DAY = timedelta(days=1)


async def test_latest_raw_is_the_stored_json_as_is(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    assert await reader.latest_raw(SENSOR, "battery") is None
    reading = make_reading(0, 85.5)
    writer.store(reading)
    assert await reader.latest_raw(SENSOR, "battery") == reading.to_json()
    assert Reading.model_validate_json(reading.to_json()) == reading


async def test_latest_all_raw_has_only_present_types(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    assert await reader.latest_all_raw(SENSOR) == {}
    battery, speed = make_reading(0, 80.0), make_reading(5, 12.5, "speed")
    writer.store_many([battery, speed, make_reading(1, 1.0, sensor_id="ev_002")])
    assert await reader.latest_all_raw(SENSOR) == {
        "battery": battery.to_json(),
        "speed": speed.to_json(),
    }


async def test_reads_refuse_unkeyable_input(reader: ReadingReader) -> None:
    with pytest.raises(InvalidKey):
        await reader.latest_raw("ev 001", "battery")
    with pytest.raises(InvalidKey):
        await reader.latest_raw(SENSOR, "history")
    with pytest.raises(InvalidKey):
        await reader.latest_all_raw("*")
    with pytest.raises(InvalidKey):
        await reader.summary("{x}")
    with pytest.raises(InvalidKey):
        await reader.history("a b", start=T0, end=T0)


async def test_summary(writer: ReadingWriter, reader: ReadingReader) -> None:
    assert await reader.summary(SENSOR) is None
    writer.store_many(
        [make_reading(2000, 20.0), make_reading(1000, 30.0), make_reading(500, 1.5, "speed")]
    )
    summary = await reader.summary(SENSOR)
    assert summary is not None
    assert summary.sensor_id == SENSOR
    battery = summary.types["battery"]
    assert (battery.count, battery.min, battery.max, battery.mean) == (2, 20.0, 30.0, 25.0)
    assert battery.first == T0 + timedelta(seconds=1)
    assert battery.last == T0 + timedelta(seconds=2)
    assert battery.unit == "percentage"
    assert summary.types["speed"].count == 1
    assert summary.types["speed"].unit == "km/h"


async def test_history_bounds_are_inclusive(writer: ReadingWriter, reader: ReadingReader) -> None:
    readings = [make_reading(ms, 50.0 + ms / 1000) for ms in (0, 1000, 2000, 3000)]
    writer.store_many(readings)
    page = await reader.history(
        SENSOR, start=T0 + timedelta(seconds=1), end=T0 + timedelta(seconds=2), limit=10
    )
    assert page.items == readings[1:3]
    assert page.next_cursor is None
    assert page.sensor_id == SENSOR
    # Readings have whole milliseconds: a start 0.5 ms after one excludes it; an end keeps it.
    page = await reader.history(
        SENSOR,
        start=T0 + timedelta(seconds=1, microseconds=500),
        end=T0 + timedelta(seconds=3, microseconds=500),
    )
    assert page.items == readings[2:]


async def test_history_accepts_any_time_zone(writer: ReadingWriter, reader: ReadingReader) -> None:
    reading = make_reading(0, 50.0)
    writer.store(reading)
    plus_two = timezone(timedelta(hours=2))
    page = await reader.history(SENSOR, start=T0.astimezone(plus_two), end=T0.astimezone(plus_two))
    assert page.items == [reading]


async def test_history_items_are_canonical_readings(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    readings = [make_reading(1, 21.5, "temperature"), make_reading(1, 0.1 + 0.2, "voltage")]
    writer.store_many(readings)
    page = await reader.history(SENSOR, start=T0, end=T0 + DAY)
    assert page.items == readings
    assert [item.to_json() for item in page.items] == [r.to_json() for r in readings]


async def test_history_json_spells_every_value_as_the_model_does(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    values = [0.0, -0.0, 85.5, 1e-7, 2.5e-05, 1e16, 1e22, -123456.789, 1 / 3, 5e-324]
    writer.store_many([make_reading(i * 1000 + 7, v, "temperature") for i, v in enumerate(values)])
    arguments = {"start": T0, "end": T0 + DAY, "limit": 4}
    page = await reader.history(SENSOR, **arguments)
    assert await reader.history_json(SENSOR, **arguments) == page.model_dump_json().encode()
    arguments["cursor"] = page.next_cursor
    page = await reader.history(SENSOR, **arguments)
    assert await reader.history_json(SENSOR, **arguments) == page.model_dump_json().encode()


async def test_history_filters_types_and_refuses_unknown_ones(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    writer.store_many([make_reading(0, 1.0), make_reading(0, 2.0, "speed")])
    page = await reader.history(SENSOR, start=T0, end=T0, sensor_types=["speed", "speed"])
    assert [item.sensor_type for item in page.items] == ["speed"]
    with pytest.raises(UnknownSensorType, match="unknown sensor type 'warp'"):
        await reader.history(SENSOR, start=T0, end=T0, sensor_types=["warp"])
    with pytest.raises(InvalidArgument, match="sequence"):
        await reader.history(SENSOR, start=T0, end=T0, sensor_types="speed")


async def test_history_argument_errors(reader: ReadingReader) -> None:
    naive = T0.replace(tzinfo=None)
    with pytest.raises(InvalidArgument, match="start"):
        await reader.history(SENSOR, start=naive, end=T0)
    with pytest.raises(InvalidArgument, match="end"):
        await reader.history(SENSOR, start=T0, end=naive)
    for limit in (0, -1, True):
        with pytest.raises(InvalidArgument, match="limit"):
            await reader.history(SENSOR, start=T0, end=T0, limit=limit)
    with pytest.raises(InvalidCursor, match="malformed cursor"):
        await reader.history(SENSOR, start=T0, end=T0, cursor="%%%")


async def test_history_start_after_end_is_empty(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    writer.store(make_reading(0, 1.0))
    page = await reader.history(SENSOR, start=T0 + DAY, end=T0)
    assert (page.items, page.next_cursor) == ([], None)


async def test_history_bounds_late_in_the_calendar(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    # Regression: a start after 3939-01-01 overflowed the datetime arithmetic of its rounding.
    writer.store(make_reading(0, 1.0))
    late = datetime(4000, 1, 1, tzinfo=UTC)
    page = await reader.history(SENSOR, start=late, end=late + DAY)
    assert (page.items, page.next_cursor) == ([], None)
    last = datetime.max.replace(tzinfo=UTC)
    page = await reader.history(SENSOR, start=last, end=last)
    assert page.items == []


#: Any offset RFC 3339 allows, and instants over the whole of years 1-9999 in that offset.
_OFFSETS = st.timedeltas(-timedelta(hours=23, minutes=59), timedelta(hours=23, minutes=59)).map(
    lambda offset: timezone(timedelta(minutes=offset // timedelta(minutes=1)))
)
_MOMENTS = st.one_of(
    st.datetimes(timezones=_OFFSETS),
    st.datetimes(T0.replace(tzinfo=None) - DAY, T0.replace(tzinfo=None) + DAY, timezones=_OFFSETS),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=_MOMENTS, end=_MOMENTS)
def test_history_bounds_anywhere_in_years_1_to_9999(
    redis_client: redis.Redis, redis_url: str, key_prefix: str, start: datetime, end: datetime
) -> None:
    """Any aware bounds of years 1-9999, in any offset: no error, and a reading is on the page
    exactly when ``start <= its time <= end``, at millisecond precision."""
    storage = StorageSettings(key_prefix=f"{key_prefix}{uuid.uuid4().hex[:8]}:")
    reading = make_reading(0, 1.0)
    ReadingWriter(redis_client, storage).store(reading)

    async def read() -> list[Reading]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            reader = ReadingReader(client, storage, CATALOGUE)
            return (await reader.history(SENSOR, start=start, end=end)).items
        finally:
            await client.aclose()

    assert anyio.run(read) == ([reading] if start <= reading.timestamp <= end else [])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ms=st.integers(0, 10**120) | st.integers(T0_MS - 5, T0_MS + 5),
    sensor_type=st.sampled_from(["battery", "speed", "a", "zzz"]),
    start=_MOMENTS,
)
def test_any_well_formed_cursor_reads_after_its_position(
    redis_client: redis.Redis,
    redis_url: str,
    key_prefix: str,
    ms: int,
    sensor_type: str,
    start: datetime,
) -> None:
    """A cursor is client input: any position it names, however far, is only a lower bound."""
    storage = StorageSettings(key_prefix=f"{key_prefix}{uuid.uuid4().hex[:8]}:")
    reading = make_reading(0, 1.0)
    ReadingWriter(redis_client, storage).store(reading)
    cursor = encode_cursor(Position(ms, sensor_type))
    end = datetime.max.replace(tzinfo=UTC)

    async def read() -> list[Reading]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            reader = ReadingReader(client, storage, CATALOGUE)
            return (await reader.history(SENSOR, start=start, end=end, cursor=cursor)).items
        finally:
            await client.aclose()

    after = (ms, sensor_type) < (T0_MS, "battery")
    assert anyio.run(read) == ([reading] if after and start <= reading.timestamp else [])


async def _all_pages(
    reader: ReadingReader, limit: int, sensor_types: list[str] | None = None
) -> list[list[Reading]]:
    pages: list[list[Reading]] = []
    cursor = None
    while True:
        arguments = {
            "start": T0,
            "end": T0 + DAY,
            "sensor_types": sensor_types,
            "limit": limit,
            "cursor": cursor,
        }
        page = await reader.history(SENSOR, **arguments)
        # The API's JSON of the same page, built without models, is the model's JSON.
        assert await reader.history_json(SENSOR, **arguments) == page.model_dump_json().encode()
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        assert len(page.items) == limit
        cursor = page.next_cursor
        assert len(pages) < 1000, "paging does not end"


async def test_paging_over_several_types_has_no_gaps_or_repeats(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    # Same milliseconds across types, and runs of one type, to exercise the (ms, type) order.
    readings = [
        make_reading(ms, float(ms % 90), sensor_type)
        for ms in range(0, 40_000, 1000)
        for sensor_type in ("battery", "speed", "temperature")
        if (ms // 1000) % 3 != ("battery", "speed", "temperature").index(sensor_type) or ms < 5000
    ]
    writer.store_many(readings)
    expected = sorted(readings, key=lambda r: (r.timestamp, r.sensor_type))
    for limit in (1, 2, 3, 7, len(readings) - 1, len(readings), len(readings) + 1):
        pages = await _all_pages(reader, limit)
        assert [item for page in pages for item in page] == expected, limit
        assert all(page for page in pages), "no empty page before the end"
    only_two = [r for r in expected if r.sensor_type in ("speed", "temperature")]
    pages = await _all_pages(reader, 4, ["temperature", "speed"])
    assert [item for page in pages for item in page] == only_two


async def test_cursor_survives_writes_between_pages(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    writer.store_many([make_reading(ms, 1.0) for ms in (0, 10, 20, 30)])
    first = await reader.history(SENSOR, start=T0, end=T0 + DAY, limit=2)
    assert first.next_cursor is not None
    # Arrivals before the cursor do not shift the next page; arrivals after it show up.
    writer.store_many([make_reading(5, 2.0), make_reading(10, 3.0, "speed"), make_reading(25, 4.0)])
    second = await reader.history(
        SENSOR, start=T0, end=T0 + DAY, limit=10, cursor=first.next_cursor
    )
    assert [(item.timestamp, item.sensor_type) for item in second.items] == [
        (T0 + timedelta(milliseconds=10), "speed"),
        (T0 + timedelta(milliseconds=20), "battery"),
        (T0 + timedelta(milliseconds=25), "battery"),
        (T0 + timedelta(milliseconds=30), "battery"),
    ]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    points=st.lists(
        st.tuples(st.sampled_from(["battery", "speed", "power"]), st.integers(0, 50)),
        unique=True,
        max_size=30,
    ),
    limit=st.integers(1, 8),
    window=st.tuples(st.integers(-5, 55), st.integers(-5, 55)),
)
def test_paging_property(
    redis_client: redis.Redis,
    redis_url: str,
    key_prefix: str,
    points: list[tuple[str, int]],
    limit: int,
    window: tuple[int, int],
) -> None:
    """Pages of any size, over any window, concatenate to exactly the readings in that window."""
    storage = StorageSettings(key_prefix=f"{key_prefix}{uuid.uuid4().hex[:8]}:")
    readings = [make_reading(ms, 1.0, sensor_type) for sensor_type, ms in points]
    ReadingWriter(redis_client, storage).store_many(readings)
    low, high = window
    start, end = T0 + timedelta(milliseconds=low), T0 + timedelta(milliseconds=high)
    expected = sorted(
        (r for r in readings if start <= r.timestamp <= end),
        key=lambda r: (r.timestamp, r.sensor_type),
    )

    async def collect() -> list[Reading]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            reader = ReadingReader(client, storage, CATALOGUE)
            items: list[Reading] = []
            cursor = None
            for _ in range(100):
                page = await reader.history(
                    SENSOR, start=start, end=end, limit=limit, cursor=cursor
                )
                items += page.items
                if page.next_cursor is None:
                    return items
                cursor = page.next_cursor
            raise AssertionError("paging does not end")
        finally:
            await client.aclose()

    assert anyio.run(collect) == expected


async def test_history_reports_damaged_buckets_and_meta(
    reader: ReadingReader, redis_client: redis.Redis
) -> None:
    key = reader.keys.history(SENSOR, "battery")
    bucket = str(T0_MS // 120_000)
    redis_client.hset(key, mapping={"meta": f"120000:{T0_MS}:0", bucket: "garbage"})
    with pytest.raises(StorageError, match=f"damaged history bucket {bucket}: 7 bytes"):
        await reader.history(SENSOR, start=T0, end=T0)
    redis_client.hset(key, "meta", "garbage")
    with pytest.raises(StorageError, match="damaged history meta b'garbage'"):
        await reader.history(SENSOR, start=T0, end=T0)


async def test_works_with_a_decoding_client(
    writer: ReadingWriter, redis_url: str, settings: StorageSettings
) -> None:
    reading = make_reading(0, 85.5)
    writer.store(reading)
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        reader = ReadingReader(client, settings, CATALOGUE)
        assert await reader.latest_raw(SENSOR, "battery") == reading.to_json()
        assert await reader.latest_all_raw(SENSOR) == {"battery": reading.to_json()}
        assert (await reader.history(SENSOR, start=T0, end=T0)).items == [reading]
        summary = await reader.summary(SENSOR)
        assert summary is not None
        assert summary.types["battery"].count == 1
    finally:
        await client.aclose()


async def test_ping_measures_milliseconds(reader: ReadingReader) -> None:
    latency = await reader.ping()
    assert 0.0 < latency < 5000.0


async def test_unreachable_redis_is_storage_unavailable(
    unreachable_async_client: redis.asyncio.Redis,
) -> None:
    reader = ReadingReader(unreachable_async_client, StorageSettings(), CATALOGUE)
    with pytest.raises(StorageUnavailable, match="Redis unavailable") as caught:
        await reader.ping()
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    with pytest.raises(StorageUnavailable):
        await reader.latest_raw(SENSOR, "battery")
    with pytest.raises(StorageUnavailable):
        await reader.latest_all_raw(SENSOR)
    with pytest.raises(StorageUnavailable):
        await reader.summary(SENSOR)
    with pytest.raises(StorageUnavailable):
        await reader.history(SENSOR, start=T0, end=T0)

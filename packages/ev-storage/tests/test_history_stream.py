"""A whole history range in chunks (``ReadingReader.history_chunks``) against the real Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio
from _storage_helpers import CATALOGUE, SENSOR, T0, T0_MS, make_reading

from ev_storage import (
    InvalidArgument,
    ReadingReader,
    ReadingWriter,
    StorageSettings,
    StorageUnavailable,
    UnknownSensorType,
)
from ev_storage.history import HistoryScan

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DAY = timedelta(days=1)
TYPES = ("battery", "speed", "temperature")


async def _collect(reader: ReadingReader, **arguments: Any) -> list[list[tuple[int, str, float]]]:
    arguments = {"start": T0, "end": T0 + DAY, **arguments}
    return [chunk async for chunk in reader.history_chunks(SENSOR, **arguments)]


def _rows(readings: list[Any]) -> list[tuple[int, str, float]]:
    return sorted((int(r.timestamp.timestamp() * 1000), r.sensor_type, r.value) for r in readings)


async def test_chunks_concatenate_to_the_merge_of_every_type(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    # Same milliseconds across types, runs of one type, a type with far fewer rows, and
    # several buckets (2 minutes each) per type.
    readings = [
        make_reading(ms, float(ms % 90), sensor_type)
        for ms in range(0, 600_000, 700)
        for sensor_type in TYPES
        if sensor_type != "temperature" or ms % 7000 == 0
        if sensor_type != "speed" or (ms // 70_000) % 2 == 0
    ]
    writer.store_many(readings)
    expected = _rows(readings)
    for chunk in (1, 2, 7, 100, 5000):
        chunks = await _collect(reader, chunk=chunk)
        assert [row for rows in chunks for row in rows] == expected, chunk
        assert all(chunks), "no empty chunk"
    two = await _collect(reader, chunk=50, sensor_types=["temperature", "speed"])
    assert [row for rows in two for row in rows] == [r for r in expected if r[1] != "battery"]


async def test_bounds_are_inclusive_and_cut_buckets(
    writer: ReadingWriter, reader: ReadingReader
) -> None:
    writer.store_many([make_reading(ms, 1.0) for ms in range(0, 300_000, 1000)])
    chunks = await _collect(
        reader,
        start=T0 + timedelta(milliseconds=1000),
        end=T0 + timedelta(milliseconds=200_000),
        chunk=10,
    )
    rows = [row for rows in chunks for row in rows]
    assert rows[0][0] == T0_MS + 1000
    assert rows[-1][0] == T0_MS + 200_000
    assert len(rows) == 200


async def test_memory_is_bounded_by_the_chunk_not_the_range(
    writer: ReadingWriter, reader: ReadingReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No scan ever holds much more than one chunk, and no chunk yielded is larger than one per
    type: what an export holds does not grow with the range."""
    readings = [make_reading(ms, 2.0, t) for ms in range(0, 1_800_000, 1000) for t in TYPES]
    writer.store_many(readings)  # 5,400 rows, 1,800 per type, 120 per bucket
    most_held = 0
    take = HistoryScan.take

    def spying_take(self: HistoryScan) -> list[tuple[int, str, float]]:
        nonlocal most_held
        rows = take(self)
        most_held = max(most_held, len(rows))
        return rows

    monkeypatch.setattr(HistoryScan, "take", spying_take)
    chunk = 100
    chunks = await _collect(reader, chunk=chunk)
    assert sum(map(len, chunks)) == len(readings)
    per_bucket = 120
    # A scan stops after the bucket that completes its chunk: at most one bucket beyond it
    # (the density estimate may ask for one more).
    assert 0 < most_held <= chunk + 2 * per_bucket
    assert max(map(len, chunks)) <= len(TYPES) * (chunk + 2 * per_bucket)
    assert len(chunks) >= len(readings) // (len(TYPES) * (chunk + 2 * per_bucket))


async def test_each_bucket_is_read_once(
    writer: ReadingWriter, settings: StorageSettings, redis_url: str
) -> None:
    """Unlike paging with cursors, which reads limit + 1 rows of every type per page."""
    writer.store_many([make_reading(ms, 3.0, t) for ms in range(0, 1_200_000, 1000) for t in TYPES])
    client = redis.asyncio.Redis.from_url(redis_url)
    asked: list[bytes] = []
    pipeline = client.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute_command = pipe.execute_command

        def record(*command: Any, **options: Any) -> Any:
            if command[0] == "HMGET":
                asked.extend(field for field in command[2:] if field != b"meta")
            return execute_command(*command, **options)

        pipe.execute_command = record  # type: ignore[method-assign]
        return pipe

    client.pipeline = counting_pipeline  # type: ignore[method-assign]
    try:
        reader = ReadingReader(client, settings, CATALOGUE)
        chunks = reader.history_chunks(SENSOR, start=T0, end=T0 + DAY, sensor_types=TYPES, chunk=50)
        rows = [row async for chunk in chunks for row in chunk]
    finally:
        await client.aclose()
    assert len(rows) == 3 * 1200
    assert T0_MS % 120_000 == 0  # ten 2-minute buckets per type
    assert sorted(asked) == sorted([str(T0_MS // 120_000 + n).encode() for n in range(10)] * 3)


async def test_stopping_early_stops_the_reads(
    writer: ReadingWriter, settings: StorageSettings, redis_url: str
) -> None:
    writer.store_many([make_reading(ms, 4.0) for ms in range(0, 1_200_000, 1000)])
    client = redis.asyncio.Redis.from_url(redis_url)
    executed = 0
    pipeline = client.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        nonlocal executed
        executed += 1
        return pipeline(*args, **kwargs)

    client.pipeline = counting_pipeline  # type: ignore[method-assign]
    try:
        reader = ReadingReader(client, settings, CATALOGUE)
        chunks = reader.history_chunks(SENSOR, start=T0, end=T0 + DAY, chunk=10)
        first = await anext(chunks)  # type: ignore[arg-type]
        assert len(first) >= 10
        await chunks.aclose()  # type: ignore[attr-defined]
        after_first = executed
        assert after_first <= 3
    finally:
        await client.aclose()


async def test_without_data_there_is_no_chunk(reader: ReadingReader) -> None:
    assert await _collect(reader) == []
    assert await _collect(reader, start=T0 + DAY, end=T0) == []


async def test_arguments_are_checked_before_any_read(reader: ReadingReader) -> None:
    with pytest.raises(UnknownSensorType):
        reader.history_chunks(SENSOR, start=T0, end=T0, sensor_types=["warp"])
    with pytest.raises(InvalidArgument):
        reader.history_chunks(SENSOR, start=T0, end=T0, chunk=0)
    with pytest.raises(InvalidArgument):
        reader.history_chunks(SENSOR, start=T0.replace(tzinfo=None), end=T0)


async def test_unreachable_redis_is_storage_unavailable(
    unreachable_async_client: redis.asyncio.Redis,
) -> None:
    reader = ReadingReader(unreachable_async_client, StorageSettings(), CATALOGUE)
    with pytest.raises(StorageUnavailable):
        await _collect(reader)

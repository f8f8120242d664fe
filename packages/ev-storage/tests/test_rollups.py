"""Rollups kept by the write script (``ev_storage.rollups``), against the real Redis: they always
aggregate exactly what the history holds, and aggregates read through them equal, bit for bit,
those read from every reading; plus the pure logic of cutting a range into pieces."""

from __future__ import annotations

import asyncio
import random
import struct
import uuid
from datetime import timedelta

import pytest
import redis
import redis.asyncio
from _storage_helpers import (
    CATALOGUE,
    T0_MS,
    check_rollups,
    history_fields,
    history_rows,
    make_reading,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ev_schemas import MAX_BUCKETS, AggregationPlan, BucketValues, Grid, Interval, Reading
from ev_schemas.intervals import parse_zone
from ev_storage import (
    KeyLayout,
    ReadingReader,
    ReadingWriter,
    StorageError,
    StorageSettings,
    WriteOutcome,
)
from ev_storage.aggregate import aggregate_history
from ev_storage.rollups import (
    MINUTE_MS,
    QUARTER_MS,
    Piece,
    cover,
    decode_record,
    is_rollup_field,
    parse_since,
    rollup_size,
)

HOUR = 3_600_000
RETENTION = timedelta(hours=2)
Q = QUARTER_MS


def _settings(prefix: str, *, rollups: bool = True) -> StorageSettings:
    return StorageSettings(
        key_prefix=prefix,
        history_retention=RETENTION,
        history_bucket=timedelta(seconds=30),
        history_rollups=rollups,
    )


def _reading(ms: int, value: float, sensor_id: str) -> Reading:
    """A speed reading at T0 + ms with any finite value (no range check: the writer's view)."""
    built = make_reading(ms, 1.0, "speed", sensor_id)
    return Reading.model_construct(**{**built.__dict__, "value": value})


async def _both(
    redis_url: str, prefix: str, sensor_id: str, plan: AggregationPlan
) -> tuple[list[BucketValues], list[BucketValues]]:
    """The plan's buckets through the rollups and from every reading."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        reader = ReadingReader(client, _settings(prefix), CATALOGUE)
        fast = await aggregate_history(reader, sensor_id, "speed", plan, chunk=11)
        slow = await aggregate_history(reader, sensor_id, "speed", plan, use_rollups=False)
        return fast, slow
    finally:
        await client.aclose()


def _bits(buckets: list[BucketValues]) -> list[tuple[object, ...]]:
    """Buckets with every float as its bytes: -0.0 and 0.0 differ, as NaN would."""
    return [
        tuple(struct.pack(">d", v) if isinstance(v, float) else v for v in vars_of(b))
        for b in buckets
    ]


def vars_of(bucket: BucketValues) -> tuple[object, ...]:
    return (
        bucket.start_ms,
        bucket.end_ms,
        bucket.count,
        bucket.avg,
        bucket.min,
        bucket.max,
        bucket.sum,
        bucket.first,
        bucket.last,
    )


values = st.one_of(
    st.sampled_from([0.0, -0.0, 1.5, -1.5, 0.1, 1e16, -1e16, 5e-324]),
    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(st.tuples(st.integers(0, 5 * HOUR), values), max_size=150),
    copies=st.lists(st.integers(0, 149), max_size=30),
    switches=st.lists(st.booleans(), min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
    start=st.integers(-HOUR, 5 * HOUR),
    length=st.integers(0, 6 * HOUR),
    interval=st.sampled_from(["1m", "2m", "15m", "30m", "1h", "1d", "1w", "7m"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kathmandu", "Asia/Kolkata"]),
    batch=st.integers(1, 40),
)
def test_rollups_give_the_same_buckets_as_every_reading(
    redis_client: redis.Redis,
    redis_url: str,
    key_prefix: str,
    data: list[tuple[int, float]],
    copies: list[int],
    switches: list[bool],
    seed: int,
    start: int,
    length: int,
    interval: str,
    zone: str,
    batch: int,
) -> None:
    """Out of order, redelivered, conflicting, trimmed by retention, with rollups switched off
    and on between batches (an upgrade from a version without them is the same): the rollups
    hold exactly the history's readings from their start on, and aggregates agree bit for bit."""
    base = T0_MS + 39 * 24 * HOUR  # around the European DST change of 2024-03-31
    grid = Grid(Interval.parse(interval), parse_zone(zone))
    assume(grid.count(base + start, base + start + length) <= MAX_BUCKETS)
    writes = [(offset, value) for offset, value in data]
    writes += [(writes[i][0], writes[i][1] + (i % 2)) for i in copies if i < len(writes)]
    random.Random(seed).shuffle(writes)
    sensor_id = f"roll_{uuid.uuid4().hex[:12]}"
    phases = [*switches, True]  # the last phase keeps rollups
    per_phase = -(-len(writes) // len(phases)) or 1
    for number, rollups in enumerate(phases):
        writer = ReadingWriter(redis_client, _settings(key_prefix, rollups=rollups))
        part = writes[number * per_phase : (number + 1) * per_phase]
        outcomes = []
        for first in range(0, len(part), batch):
            chunk = part[first : first + batch]
            outcomes += writer.store_many(
                [_reading(ms + base - T0_MS, v, sensor_id) for ms, v in chunk]
            )
    key = KeyLayout(key_prefix).history(sensor_id, "speed")
    since = check_rollups(redis_client, key)
    if WriteOutcome.STORED in outcomes:  # the last phase stored a reading: rollups are kept
        assert since is not None

    plan = AggregationPlan.make(base + start, base + start + length, interval=interval, tz=zone)
    fast, slow = asyncio.run(_both(redis_url, key_prefix, sensor_id, plan))
    assert _bits(fast) == _bits(slow)


def test_long_ranges_are_served_by_the_rollups(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    """With the raw buckets removed, only the readings the rollups cannot serve go missing:
    the ragged ends of the range, and the span before the rollups' start."""
    writer = ReadingWriter(redis_client, _settings(key_prefix))
    readings = [_reading(s * 1000, float(s % 7), "ev_roll") for s in range(0, 2 * 3600, 5)]
    writer.store_many(readings)
    key = writer.keys.history("ev_roll", "speed")
    since = check_rollups(redis_client, key)
    # The window starts 5 s before T0 (a quarter hour): rollups from T0 on.
    assert since == T0_MS
    raw = [name for name in history_fields(redis_client, key) if name != b"meta"]
    redis_client.hdel(key, *raw)
    # 1 hour in 1-hour buckets, starting 10 s past T0: the 10 readings of its first 50 s come
    # from raw (gone now), the rest from 14 minute records and 3 quarter-hour records.
    plan = AggregationPlan.make(T0_MS + 10_000, T0_MS + HOUR, interval="1h", agg=["count"])
    fast, slow = asyncio.run(_both(redis_url, key_prefix, "ev_roll", plan))
    assert [b.count for b in fast] == [718 - 10]
    assert slow == []


def test_a_history_from_before_rollups_gets_them_after_its_newest_reading(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    old = ReadingWriter(redis_client, _settings(key_prefix, rollups=False))
    old.store_many([_reading(s * 1000, 1.0, "ev_up") for s in range(0, 1200, 10)])  # 20 min
    key = old.keys.history("ev_up", "speed")
    assert check_rollups(redis_client, key) is None
    new = ReadingWriter(redis_client, _settings(key_prefix))
    new.store_many([_reading(s * 1000, 2.0, "ev_up") for s in range(1200, 2400, 10)])
    # The newest reading of the old history was at T0 + 19:50: rollups from T0 + 30:00 on.
    assert check_rollups(redis_client, key) == T0_MS + 2 * Q
    plan = AggregationPlan.make(T0_MS, T0_MS + HOUR, interval="15m")
    fast, slow = asyncio.run(_both(redis_url, key_prefix, "ev_up", plan))
    assert _bits(fast) == _bits(slow)
    assert [b.count for b in fast] == [90, 90, 60]


def test_switching_rollups_off_drops_their_start(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    on = ReadingWriter(redis_client, _settings(key_prefix))
    on.store_many([_reading(s * 1000, 1.0, "ev_off") for s in range(0, 600, 10)])
    key = on.keys.history("ev_off", "speed")
    assert check_rollups(redis_client, key) is not None
    off = ReadingWriter(redis_client, _settings(key_prefix, rollups=False))
    off.store_many([_reading(700_000, 1.0, "ev_off")])
    assert check_rollups(redis_client, key) is None
    # Back on: the leftovers are deleted, the start is after the newest reading.
    on.store_many([_reading(800_000, 1.0, "ev_off")])
    fields = redis_client.hkeys(key)
    assert sorted(name for name in fields if is_rollup_field(name)) == [b"rollups"]
    assert check_rollups(redis_client, key) == T0_MS + Q


def test_the_window_moving_on_deletes_the_rollups_it_leaves(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    writer = ReadingWriter(redis_client, _settings(key_prefix))
    writer.store_many([_reading(s * 1000, 1.0, "ev_win") for s in range(0, 3 * 3600, 30)])
    key = writer.keys.history("ev_win", "speed")
    # Newest at T0 + 2:59:30, window from T0 + 0:59:30: rollups from T0 + 1:00.
    assert check_rollups(redis_client, key) == T0_MS + HOUR
    # A jump far ahead (a sensor back after a long silence) lists the hash to clean it.
    writer.store_many([_reading(40 * HOUR, 1.0, "ev_win")])
    assert check_rollups(redis_client, key) == T0_MS + 38 * HOUR
    assert sorted(history_fields(redis_client, key)) == [
        str((T0_MS + 40 * HOUR) // 30_000).encode(),
        b"meta",
    ]


def test_cover_cuts_the_range_at_rollup_boundaries() -> None:
    m = MINUTE_MS
    # Ragged start and end, quarter hours inside, minutes around them.
    assert cover(10, 3 * Q + 5 * m + 7, 0, Q, 10**12) == [
        Piece("raw", 10, m),
        Piece("minute", m, Q),
        Piece("quarter", Q, 3 * Q),
        Piece("minute", 3 * Q, 3 * Q + 5 * m),
        Piece("raw", 3 * Q + 5 * m, 3 * Q + 5 * m + 7),
    ]
    # Before the rollups' start everything is raw; minutes only when the plan needs them.
    assert cover(0, 4 * Q, 2 * Q, MINUTE_MS, 10**12) == [
        Piece("raw", 0, 2 * Q),
        Piece("minute", 2 * Q, 4 * Q),
    ]
    # Nothing after the newest reading is asked for; a range inside one minute is raw.
    assert cover(0, 4 * Q, 0, Q, Q + 90_000) == [
        Piece("quarter", 0, Q),
        Piece("minute", Q, Q + m),
        Piece("raw", Q + m, 4 * Q),
    ]
    assert cover(5, 50, 0, Q, 10**12) == [Piece("raw", 5, 50)]
    assert cover(5, 5, 0, Q, 10**12) == []


def test_rollup_size_is_the_coarsest_that_divides_every_boundary() -> None:
    assert rollup_size([0, Q, 2 * Q]) == Q
    assert rollup_size([0, 2 * MINUTE_MS]) == MINUTE_MS
    assert rollup_size([0, 7_000]) is None


def test_records_and_fields_decode_or_fail_clearly() -> None:
    record = struct.pack(">IddIdIddd", 3, -1.0, 2.0, 5, 2.0, 9, -1.0, 1e16, 1.0)
    part = decode_record(record, 60_000)
    assert (part.count, part.min, part.max) == (3, -1.0, 2.0)
    assert (part.first_ms, part.first, part.last_ms, part.last) == (60_005, 2.0, 60_009, -1.0)
    assert part.partials == (1e16, 1.0)
    with pytest.raises(StorageError, match="damaged rollup record"):
        decode_record(record[:-3], 60_000, b"m1")
    assert parse_since(b"1800000") == 2 * Q
    assert parse_since(None) is None
    for bad in (b"12", b"x"):
        with pytest.raises(StorageError, match="damaged rollups field"):
            parse_since(bad)
    assert all(map(is_rollup_field, [b"rollups", b"m12", b"q-3"]))
    assert not any(map(is_rollup_field, [b"meta", b"12", b"mx", b"m"]))


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_of_two_zeros_min_is_negative_and_max_positive_in_any_order(
    redis_client: redis.Redis, redis_url: str, key_prefix: str, order: list[int]
) -> None:
    zeros = [(1000, 0.0), (2000, -0.0)]
    writer = ReadingWriter(redis_client, _settings(key_prefix))
    writer.store_many([_reading(zeros[i][0], zeros[i][1], "ev_zero") for i in order])
    writer.store_many([_reading(HOUR, 1.0, "ev_zero")])  # the first quarter hour is done
    plan = AggregationPlan.make(T0_MS, T0_MS + Q, interval="15m")
    fast, slow = asyncio.run(_both(redis_url, key_prefix, "ev_zero", plan))
    assert _bits(fast) == _bits(slow)
    (bucket,) = fast
    assert struct.pack(">dd", bucket.min, bucket.max) == struct.pack(">dd", -0.0, 0.0)
    assert struct.pack(">dd", bucket.first, bucket.last) == struct.pack(">dd", 0.0, -0.0)


def test_a_call_failing_part_way_keeps_the_rollups_of_what_it_stored(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """Records are updated in the script's memory and written back with a history's last
    reading of the call: a reading that fails (a damaged bucket) still leaves every stored
    reading's rollups written."""
    writer = ReadingWriter(redis_client, _settings(key_prefix))
    battery = make_reading(0, 50.0, "battery", "ev_fail")
    writer.store_many([battery])
    damaged = writer.keys.history("ev_fail", "battery")
    redis_client.hset(damaged, str(T0_MS // 30_000), b"12345")  # not whole 12-byte records
    speeds = [_reading(ms, float(ms), "ev_fail") for ms in (1000, 2000, 3000)]
    with pytest.raises(StorageError, match="damaged history bucket"):
        writer.store_many([*speeds[:2], make_reading(500, 1.0, "battery", "ev_fail"), speeds[2]])
    key = writer.keys.history("ev_fail", "speed")
    assert check_rollups(redis_client, key) is not None  # the two stored speeds, exactly
    assert [ms for ms, _ in history_rows(redis_client, key)] == [T0_MS + 1000, T0_MS + 2000]

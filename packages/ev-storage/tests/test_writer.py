"""The write script on the real Redis: idempotence, order, retention, TTLs, live messages."""

from __future__ import annotations

import struct
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from _storage_helpers import SENSOR, T0_MS, history_rows, make_reading, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ev_schemas import Reading, timestamp_ms
from ev_storage import (
    InvalidArgument,
    InvalidKey,
    ReadingWriter,
    StorageSettings,
    StorageUnavailable,
    WriteOutcome,
)

pytestmark = pytest.mark.integration

STORED, DUPLICATE, EXPIRED = WriteOutcome.STORED, WriteOutcome.DUPLICATE, WriteOutcome.EXPIRED
CONFLICT = WriteOutcome.CONFLICT
HOUR_MS = 3_600_000
# Each example writes under a fresh sub-prefix of the test's key_prefix, so sharing the
# function-scoped fixtures between examples is safe; round trips make example times vary.
REDIS_EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_outcomes_come_back_in_order(writer: ReadingWriter) -> None:
    first, second = make_reading(0, 50.0), make_reading(1000, 51.0)
    outcomes = writer.store_many([first, second, first, make_reading(-8 * 24 * HOUR_MS, 1.0)])
    assert outcomes == [STORED, STORED, DUPLICATE, EXPIRED]
    assert writer.store_many([]) == []


def test_a_new_reading_updates_latest_history_and_summary(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    reading = make_reading(0, 85.5)
    assert writer.store(reading) is STORED
    keys = writer.keys
    assert redis_client.get(keys.latest(SENSOR, "battery")) == reading.to_json()
    # T0 starts a 2-minute bucket; meta is bucket size, newest reading, first bucket.
    bucket = T0_MS // 120_000
    # The rollups (docs/storage.md) of its minute and quarter hour start with it: count, min,
    # max, first and last (offset, value), the sum's exact partials; from the quarter hour after
    # the window's start (7 days back; T0 is a multiple of 15 minutes).
    record = struct.pack(">IddIdIdd", 1, 85.5, 85.5, 0, 85.5, 0, 85.5, 85.5)
    assert redis_client.hgetall(keys.history(SENSOR, "battery")) == {
        str(bucket).encode(): struct.pack(">Id", 0, 85.5),
        b"meta": f"120000:{T0_MS}:{bucket}".encode(),
        b"rollups": str(T0_MS - 7 * 86_400_000).encode(),
        f"m{T0_MS // 60_000}".encode(): record,
        f"q{T0_MS // 900_000}".encode(): record,
    }
    assert redis_client.hgetall(keys.summary(SENSOR)) == {
        b"battery:count": b"1",
        b"battery:min": b"85.5",
        b"battery:max": b"85.5",
        b"battery:sum": b"85.5",
        b"battery:first": b"1706788800000",
        b"battery:last": b"1706788800000",
        b"battery:latest": b"1706788800000",
    }


def test_duplicate_and_conflict_change_nothing_first_write_wins(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    assert writer.store(make_reading(0, 50.0)) is STORED
    before = snapshot(redis_client, writer.keys)
    # Same sensor, type and millisecond: the same value is a redelivery, another one conflicts.
    assert writer.store_many([make_reading(0, 50.0), make_reading(0, 99.0)]) == [
        DUPLICATE,
        CONFLICT,
    ]
    assert snapshot(redis_client, writer.keys) == before
    # Still the first value, however often the conflicting copy comes again.
    assert writer.store(make_reading(0, 99.0)) is CONFLICT
    assert writer.store(make_reading(0, 50.0)) is DUPLICATE
    assert snapshot(redis_client, writer.keys) == before


def test_conflict_is_told_apart_in_every_path_of_the_script(writer: ReadingWriter) -> None:
    """Out of order, in an older bucket, in one call with its original, and 0 against -0."""
    assert writer.store_many(
        [make_reading(5000, 1.0), make_reading(0, 2.0), make_reading(0, 2.5)]
    ) == [STORED, STORED, CONFLICT]
    assert writer.store_many(
        [
            make_reading(5000, 1.0),  # the newest, again
            make_reading(5000, 1.0 + 2**-40),  # the last bits differ: another value
            make_reading(-HOUR_MS, 0.0),
            make_reading(-HOUR_MS, -0.0),  # the same number
        ]
    ) == [DUPLICATE, CONFLICT, STORED, DUPLICATE]


def test_script_replay_is_a_no_op(writer: ReadingWriter, redis_client: redis.Redis) -> None:
    """A repeated EVALSHA (redis-py retry, consumer redelivery) of a reading changes nothing."""
    reading = make_reading(0, 42.0)
    assert writer.store_many([reading, reading]) == [STORED, DUPLICATE]
    state = snapshot(redis_client, writer.keys)
    assert writer.store(reading) is DUPLICATE
    assert snapshot(redis_client, writer.keys) == state


def test_same_millisecond_of_other_types_or_sensors_is_not_a_duplicate(
    writer: ReadingWriter,
) -> None:
    outcomes = writer.store_many(
        [
            make_reading(0, 50.0),
            make_reading(0, 50.0, sensor_type="state_of_health"),
            make_reading(0, 50.0, sensor_id="ev_002"),
        ]
    )
    assert outcomes == [STORED, STORED, STORED]


def test_out_of_order_reading_keeps_the_newest_as_latest(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    newest, older = make_reading(5000, 60.0), make_reading(1000, 40.0)
    assert writer.store_many([newest, older]) == [STORED, STORED]
    keys = writer.keys
    assert redis_client.get(keys.latest(SENSOR, "battery")) == newest.to_json()
    assert history_rows(redis_client, keys.history(SENSOR, "battery")) == [
        (T0_MS + 1000, 40.0),
        (T0_MS + 5000, 60.0),
    ]


@settings(REDIS_EXAMPLES, max_examples=40)
@given(
    at=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
)
def test_latest_compares_reading_times_even_without_history(
    redis_client: redis.Redis, key_prefix: str, at: datetime
) -> None:
    """The script reads the latest's own timestamp: history may have aged out before latest."""
    writer = _fresh_writer(redis_client, key_prefix, timedelta(days=7))
    latest_key = writer.keys.latest(SENSOR, "speed")
    history_key = writer.keys.history(SENSOR, "speed")
    current = make_reading(at, 10.0, "speed")
    assert writer.store(current) is STORED
    redis_client.delete(history_key)
    assert writer.store(make_reading(at - timedelta(milliseconds=1), 20.0, "speed")) is STORED
    assert redis_client.get(latest_key) == current.to_json()
    redis_client.delete(history_key)
    newer = make_reading(at + timedelta(milliseconds=1), 30.0, "speed")
    assert writer.store(newer) is STORED
    assert redis_client.get(latest_key) == newer.to_json()


def test_latest_stays_newest_when_the_aggregates_start_over(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    """The summary notes the latest's time; lost with the summary, it is read from latest."""
    keys = writer.keys
    newest = make_reading(9000, 90.0)
    writer.store(newest)
    redis_client.delete(keys.summary(SENSOR))  # e.g. summary_ttl shorter than latest's
    assert writer.store_many([make_reading(1000, 10.0), make_reading(5000, 50.0)]) == [STORED] * 2
    assert redis_client.get(keys.latest(SENSOR, "battery")) == newest.to_json()
    summary = redis_client.hgetall(keys.summary(SENSOR))
    assert summary[b"battery:count"] == b"2"
    assert summary[b"battery:last"] == str(T0_MS + 5000).encode()
    assert summary[b"battery:latest"] == str(T0_MS + 9000).encode()


def test_an_older_reading_becomes_latest_when_latest_expired(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    keys = writer.keys
    writer.store(make_reading(9000, 90.0))
    redis_client.delete(keys.latest(SENSOR, "battery"))  # e.g. latest_ttl passed
    older = make_reading(1000, 10.0)
    writer.store(older)
    assert redis_client.get(keys.latest(SENSOR, "battery")) == older.to_json()
    between = make_reading(5000, 50.0)
    writer.store(between)
    assert redis_client.get(keys.latest(SENSOR, "battery")) == between.to_json()
    assert redis_client.hget(keys.summary(SENSOR), "battery:latest") == str(T0_MS + 5000).encode()


def test_expired_reading_is_dropped_and_changes_nothing(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    writer = ReadingWriter(
        redis_client, StorageSettings(key_prefix=key_prefix, history_retention=timedelta(hours=1))
    )
    assert writer.store(make_reading(2 * HOUR_MS, 50.0)) is STORED
    before = snapshot(redis_client, writer.keys)
    assert writer.store(make_reading(HOUR_MS - 1, 10.0)) is EXPIRED
    assert snapshot(redis_client, writer.keys) == before
    # The window's edge is inclusive: exactly `retention` older than the newest is kept.
    assert writer.store(make_reading(HOUR_MS, 10.0)) is STORED


def test_retention_trims_history_behind_the_newest(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    writer = ReadingWriter(
        redis_client, StorageSettings(key_prefix=key_prefix, history_retention=timedelta(hours=1))
    )
    readings = [make_reading(ms, 50.0) for ms in (0, HOUR_MS // 2, HOUR_MS, 2 * HOUR_MS)]
    assert writer.store_many(readings) == [STORED] * 4
    history = history_rows(redis_client, writer.keys.history(SENSOR, "battery"))
    assert [ms for ms, _ in history] == [T0_MS + HOUR_MS, T0_MS + 2 * HOUR_MS]
    # Aggregates cover every distinct reading stored, not only the window.
    assert redis_client.hget(writer.keys.summary(SENSOR), "battery:count") == b"4"


def test_history_expires_after_retention_latest_and_summary_keep_by_default(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    writer.store(make_reading(0, 50.0))
    keys = writer.keys
    week_ms = 7 * 24 * HOUR_MS
    assert week_ms - 60_000 < redis_client.pttl(keys.history(SENSOR, "battery")) <= week_ms
    assert redis_client.pttl(keys.latest(SENSOR, "battery")) == -1
    assert redis_client.pttl(keys.summary(SENSOR)) == -1


def test_configured_ttls_are_set_and_refreshed(redis_client: redis.Redis, key_prefix: str) -> None:
    writer = ReadingWriter(
        redis_client,
        StorageSettings(
            key_prefix=key_prefix,
            history_retention=timedelta(hours=1),
            latest_ttl=timedelta(minutes=5),
            summary_ttl=timedelta(minutes=10),
        ),
    )
    keys = writer.keys
    writer.store(make_reading(0, 50.0))
    for key in (
        keys.history(SENSOR, "battery"),
        keys.latest(SENSOR, "battery"),
        keys.summary(SENSOR),
    ):
        redis_client.pexpire(key, 1000)
    writer.store(make_reading(1, 51.0))
    assert HOUR_MS - 60_000 < redis_client.pttl(keys.history(SENSOR, "battery")) <= HOUR_MS
    assert 240_000 < redis_client.pttl(keys.latest(SENSOR, "battery")) <= 300_000
    assert 540_000 < redis_client.pttl(keys.summary(SENSOR)) <= 600_000


def test_summary_math(writer: ReadingWriter, redis_client: redis.Redis) -> None:
    values = {3000: 20.0, 1000: 80.5, 5000: 10.25, 2000: 99.0, 4000: 0.0}
    writer.store_many([make_reading(ms, value) for ms, value in values.items()])
    writer.store(make_reading(2000, 1.0))  # duplicate: not counted
    fields = redis_client.hgetall(writer.keys.summary(SENSOR))
    assert fields == {
        b"battery:count": b"5",
        b"battery:min": b"0.0",
        b"battery:max": b"99.0",
        b"battery:sum": b"209.75",
        b"battery:first": str(T0_MS + 1000).encode(),
        b"battery:last": str(T0_MS + 5000).encode(),
        b"battery:latest": str(T0_MS + 5000).encode(),
    }


def test_sums_keep_full_float_precision(writer: ReadingWriter, redis_client: redis.Redis) -> None:
    values = [0.1, 0.2, 1 / 3, 12345.678901234567]
    writer.store_many([make_reading(i, value, "voltage") for i, value in enumerate(values)])
    total = redis_client.hget(writer.keys.summary(SENSOR), "voltage:sum")
    assert total is not None
    expected = 0.0
    for value in values:
        expected += value
    assert float(total) == expected


def test_live_messages_only_for_new_readings(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    first, second = make_reading(1000, 50.0), make_reading(2000, 51.0)
    with redis_client.pubsub() as pubsub:  # type: ignore[no-untyped-call]
        pubsub.subscribe(writer.keys.live_channel(SENSOR))
        assert _next_message(pubsub)["type"] == "subscribe"
        assert writer.store(first) is STORED
        assert writer.store(first) is DUPLICATE
        assert writer.store(make_reading(-8 * 24 * HOUR_MS, 1.0)) is EXPIRED
        assert writer.store(second) is STORED
        # Pub/sub keeps order: had the duplicate or the expired one been published, it would
        # arrive between the two.
        assert _next_message(pubsub)["data"] == first.to_json()
        assert _next_message(pubsub)["data"] == second.to_json()


def _next_message(pubsub: Any, deadline_s: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            return dict(message)
    pytest.fail("no pub/sub message within the deadline")


def test_unkeyable_or_non_finite_readings_are_refused_before_anything_is_sent(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    good = make_reading(0, 50.0)
    bad_id = Reading.model_construct(**{**good.__dict__, "sensor_id": "ev 001"})
    with pytest.raises(InvalidKey, match="sensor_id"):
        writer.store_many([good, bad_id])
    not_finite = Reading.model_construct(**{**good.__dict__, "value": float("nan")})
    with pytest.raises(InvalidArgument, match="finite"):
        writer.store_many([good, not_finite])
    assert list(redis_client.scan_iter(match=f"{writer.keys.prefix}*")) == []


def test_unreachable_redis_is_storage_unavailable(unreachable_client: redis.Redis) -> None:
    writer = ReadingWriter(unreachable_client, StorageSettings())
    with pytest.raises(StorageUnavailable, match="Redis unavailable") as caught:
        writer.store(make_reading(0, 50.0))
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


TYPES_AND_RANGES = {"battery": 400, "speed": 1600, "temperature": 800}


@st.composite
def deliveries(draw: st.DrawFn, span_ms: int) -> tuple[list[Reading], list[Reading]]:
    """Distinct readings and a delivery of them: shuffled, with some delivered more than once."""
    readings = draw(_distinct_readings(span_ms))
    again = draw(st.lists(st.sampled_from(readings), max_size=10))
    return readings, draw(st.permutations(readings + again))


@st.composite
def _distinct_readings(draw: st.DrawFn, span_ms: int) -> list[Reading]:
    identities = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(TYPES_AND_RANGES)), st.integers(0, span_ms)),
            min_size=1,
            max_size=25,
            unique=True,
        )
    )
    # Quarter units: every partial sum is exact, so any order gives the same bits.
    return [
        make_reading(ms, draw(st.integers(0, TYPES_AND_RANGES[sensor_type])) / 4, sensor_type)
        for sensor_type, ms in identities
    ]


@st.composite
def conflicting_deliveries(draw: st.DrawFn, span_ms: int) -> list[Reading]:
    """A shuffled delivery of distinct readings, copies of them, and copies of them with
    another value (a republish that conflicts)."""
    readings = draw(_distinct_readings(span_ms))
    again = draw(st.lists(st.sampled_from(readings), max_size=10))
    others = [
        r.model_copy(update={"value": r.value + draw(st.integers(1, 40)) / 4})
        for r in draw(st.lists(st.sampled_from(readings), min_size=1, max_size=10))
    ]
    return draw(st.permutations(readings + again + others))


def _fresh_writer(
    client: redis.Redis, key_prefix: str, retention: timedelta, bucket_ms: int = 120_000
) -> ReadingWriter:
    sub_prefix = f"{key_prefix}{uuid.uuid4().hex[:8]}:"
    settings = StorageSettings(
        key_prefix=sub_prefix,
        history_retention=retention,
        history_bucket=timedelta(milliseconds=bucket_ms),
    )
    return ReadingWriter(client, settings)


# History buckets from one reading each to all readings in one, so that trimming and inserting
# meet bucket edges everywhere.
BUCKETS_MS = st.sampled_from([1, 7, 250, 1000, 120_000])


@settings(REDIS_EXAMPLES)
@given(case=deliveries(span_ms=HOUR_MS), bucket_ms=BUCKETS_MS)
def test_any_delivery_order_with_duplicates_leaves_the_same_state(
    redis_client: redis.Redis,
    key_prefix: str,
    case: tuple[list[Reading], list[Reading]],
    bucket_ms: int,
) -> None:
    readings, delivery = case
    in_order = _fresh_writer(redis_client, key_prefix, timedelta(days=7), bucket_ms)
    shuffled = _fresh_writer(redis_client, key_prefix, timedelta(days=7), bucket_ms)
    in_order.store_many(sorted(readings, key=lambda r: r.timestamp))
    outcomes = shuffled.store_many(delivery)
    assert outcomes.count(STORED) == len(readings)
    assert outcomes.count(DUPLICATE) == len(delivery) - len(readings)
    types = tuple(TYPES_AND_RANGES)
    assert snapshot(redis_client, shuffled.keys, types=types) == snapshot(
        redis_client, in_order.keys, types=types
    )


@settings(REDIS_EXAMPLES)
@given(delivery=conflicting_deliveries(span_ms=HOUR_MS), bucket_ms=BUCKETS_MS)
def test_with_conflicts_the_first_copy_to_arrive_wins_in_any_order(
    redis_client: redis.Redis, key_prefix: str, delivery: list[Reading], bucket_ms: int
) -> None:
    """The state is that of the first-arriving value of each identity stored alone; every later
    copy is a duplicate when it has that value, a conflict when it has another."""
    first: dict[tuple[str, int], Reading] = {}
    for reading in delivery:
        first.setdefault((reading.sensor_type, timestamp_ms(reading)), reading)
    winners = sorted(first.values(), key=lambda r: r.timestamp)
    expected_outcomes = []
    seen: set[tuple[str, int]] = set()
    for reading in delivery:
        identity = (reading.sensor_type, timestamp_ms(reading))
        if identity not in seen:
            expected_outcomes.append(STORED)
        elif first[identity].value == reading.value:
            expected_outcomes.append(DUPLICATE)
        else:
            expected_outcomes.append(CONFLICT)
        seen.add(identity)
    winners_only = _fresh_writer(redis_client, key_prefix, timedelta(days=7), bucket_ms)
    shuffled = _fresh_writer(redis_client, key_prefix, timedelta(days=7), bucket_ms)
    winners_only.store_many(winners)
    assert shuffled.store_many(delivery) == expected_outcomes
    types = tuple(TYPES_AND_RANGES)
    assert snapshot(redis_client, shuffled.keys, types=types) == snapshot(
        redis_client, winners_only.keys, types=types
    )


@settings(REDIS_EXAMPLES)
@given(case=deliveries(span_ms=5000), bucket_ms=BUCKETS_MS)
def test_history_and_latest_do_not_depend_on_order_across_the_retention_edge(
    redis_client: redis.Redis,
    key_prefix: str,
    case: tuple[list[Reading], list[Reading]],
    bucket_ms: int,
) -> None:
    """Stored-then-trimmed or expired on arrival: history ends the same (summaries may differ).

    Byte for byte: the buckets, their records and the meta field.
    """
    readings, delivery = case
    in_order = _fresh_writer(redis_client, key_prefix, timedelta(seconds=1), bucket_ms)
    shuffled = _fresh_writer(redis_client, key_prefix, timedelta(seconds=1), bucket_ms)
    in_order.store_many(sorted(readings, key=lambda r: r.timestamp))
    shuffled.store_many(delivery)
    types = tuple(TYPES_AND_RANGES)
    expected = snapshot(redis_client, in_order.keys, types=types)
    got = snapshot(redis_client, shuffled.keys, types=types)
    del expected["summary"], got["summary"]
    assert got == expected
    # And what is kept is exactly the window behind each type's newest reading.
    for sensor_type in types:
        own = [r for r in readings if r.sensor_type == sensor_type]
        newest = max((timestamp_ms(r) for r in own), default=0)
        window = sorted((timestamp_ms(r), r.value) for r in own if timestamp_ms(r) >= newest - 1000)
        assert history_rows(redis_client, shuffled.keys.history(SENSOR, sensor_type)) == window


def test_a_server_that_lost_the_script_gets_it_again(private_redis: redis.Redis) -> None:
    """A new or restarted server has no scripts: what it answers NOSCRIPT is sent again after
    SCRIPT LOAD, and the batch's outcomes are exact."""
    writer = ReadingWriter(private_redis, StorageSettings())
    assert writer.store(make_reading(0, 1.0)) is STORED  # NOSCRIPT, SCRIPT LOAD, EVALSHA
    private_redis.script_flush()
    assert writer.store_many([make_reading(0, 1.0), make_reading(1, 2.0)]) == [DUPLICATE, STORED]


def test_latest_stays_newest_beside_a_writer_that_keeps_no_note(
    writer: ReadingWriter, redis_client: redis.Redis
) -> None:
    """During an upgrade an older consumer stores readings without the summary's latest note:
    it sets latest and the aggregates' last, nothing else. A reading between the note and that
    newer one must not replace it."""
    keys = writer.keys
    writer.store(make_reading(10_000, 10.0))
    newer = make_reading(20_000, 20.0)
    # What the earlier script did with `newer`: latest replaced, aggregates updated, no note.
    redis_client.set(keys.latest(SENSOR, "battery"), newer.to_json())
    redis_client.hset(keys.summary(SENSOR), mapping={"battery:last": str(T0_MS + 20_000)})
    writer.store(make_reading(15_000, 15.0))
    assert redis_client.get(keys.latest(SENSOR, "battery")) == newer.to_json()
    assert redis_client.hget(keys.summary(SENSOR), "battery:latest") == str(T0_MS + 20_000).encode()

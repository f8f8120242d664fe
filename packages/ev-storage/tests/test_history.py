"""The packed history layout: decoding and scanning (unit), bucket edges on the real Redis."""

from __future__ import annotations

import random
import struct
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import redis
import redis.asyncio
from _storage_helpers import (
    CATALOGUE,
    SENSOR,
    T0,
    T0_MS,
    check_rollups,
    history_fields,
    history_rows,
    make_reading,
)

from ev_schemas import Reading
from ev_storage import ReadingReader, ReadingWriter, StorageError, StorageSettings, WriteOutcome
from ev_storage.history import HistoryMeta, HistoryScan, decode_bucket, pack_value

STORED, DUPLICATE, EXPIRED = WriteOutcome.STORED, WriteOutcome.DUPLICATE, WriteOutcome.EXPIRED
CONFLICT = WriteOutcome.CONFLICT
B = 1000  # bucket of the integration tests, ms; T0_MS is a multiple of it
T0_BUCKET = T0_MS // B


def _records(*pairs: tuple[int, float]) -> bytes:
    return b"".join(struct.pack(">Id", offset, value) for offset, value in pairs)


# --- unit: records, meta, scans ---------------------------------------------------------------


def test_a_record_is_offset_then_exact_double_big_endian() -> None:
    assert _records((1, 0.5)) == b"\x00\x00\x00\x01" + pack_value(0.5)
    assert pack_value(0.1 + 0.2) == struct.pack(">d", 0.30000000000000004)


def test_decode_bucket_keeps_inclusive_bounds_and_edges() -> None:
    data = _records((0, 1.0), (5, 2.0), (999, 3.0))
    assert list(decode_bucket(data, 7, 1000, 7000, 7999)) == [
        (7000, 1.0),
        (7005, 2.0),
        (7999, 3.0),
    ]
    assert list(decode_bucket(data, 7, 1000, 7005, 7005)) == [(7005, 2.0)]
    assert list(decode_bucket(data, 7, 1000, 7001, 7998)) == [(7005, 2.0)]
    assert next(decode_bucket(data, -2, 1000, -10_000, 10_000)) == (-2000, 1.0)
    with pytest.raises(StorageError, match="damaged history bucket 7: 37 bytes"):
        list(decode_bucket(data + b"x", 7, 1000, 0, 10_000))


def test_meta_parse_and_damage() -> None:
    assert HistoryMeta.parse(b"120000:1706788800000:-3", "k") == HistoryMeta(
        120_000, 1706788800000, first=-3
    )
    for raw in (b"", b"1:2", b"a:b:c", b"0:1:2", b"1:2:3:4"):
        with pytest.raises(StorageError, match="damaged history meta"):
            HistoryMeta.parse(raw, "k")


def _scan(fields: Mapping[bytes, bytes], scan: HistoryScan) -> list[list[str]]:
    """Run ``scan`` against an in-memory hash; what it sent, round by round, in short."""
    rounds = []
    while not scan.done:
        commands = scan.commands()
        replies: list[object] = []
        sent = []
        for name, key, *args in commands:
            assert key == scan.key
            if name == "HMGET":
                replies.append([fields.get(field) for field in args])  # type: ignore[call-overload]
                sent.append(" ".join(arg.decode() for arg in args))  # type: ignore[union-attr]
            elif name == "HLEN":
                replies.append(len(fields))
                sent.append("HLEN")
            else:
                assert name == "HKEYS"
                replies.append(list(fields))
                sent.append("HKEYS")
        scan.receive(replies)
        rounds.append(sent)
        assert len(rounds) < 100, "scan does not end"
    return rounds


def _hash(bucket_ms: int, buckets: dict[int, list[tuple[int, float]]]) -> dict[bytes, bytes]:
    newest = max(n * bucket_ms + offset for n, rows in buckets.items() for offset, _ in rows)
    fields = {str(n).encode(): _records(*rows) for n, rows in buckets.items()}
    return {b"meta": f"{bucket_ms}:{newest}:{min(buckets)}".encode(), **fields}


def test_scan_of_a_missing_history_is_one_round() -> None:
    scan = HistoryScan("k", "battery", low=0, high=10**13, want=10, bucket_ms=100)
    assert _scan({}, scan) == [["meta 0 1", "HLEN"]]
    assert scan.rows == []


def test_scan_clamps_the_range_to_the_window() -> None:
    """From the epoch to far ahead: the meta field points the next round at what may exist."""
    fields = _hash(100, {50: [(0, 1.0)], 51: [(99, 2.0)], 60: [(7, 3.0)]})
    scan = HistoryScan("k", "speed", low=0, high=10**15, want=10, bucket_ms=100)
    assert _scan(fields, scan) == [
        ["meta 0 1", "HLEN"],
        ["50 51"],
        [" ".join(str(n) for n in range(52, 61))],  # never past the newest bucket
    ]
    assert scan.rows == [(5000, "speed", 1.0), (5199, "speed", 2.0), (6007, "speed", 3.0)]


def test_scan_stops_once_it_has_enough_rows() -> None:
    buckets = {n: [(offset, float(n)) for offset in range(0, 100, 10)] for n in range(50)}
    scan = HistoryScan("k", "speed", low=0, high=5000, want=15, bucket_ms=100)
    assert len(_scan(_hash(100, buckets), scan)) == 1  # meta and two buckets of ten
    assert [row[0] for row in scan.rows] == list(range(0, 200, 10))


def test_scan_grows_its_rounds_over_empty_stretches() -> None:
    # A hole between the first bucket (its one reading before the range) and the rest.
    fields = _hash(10, {0: [(0, 0.0)]} | {n: [(5, float(n))] for n in range(500, 700)})
    scan = HistoryScan("k", "speed", low=1, high=10**6, want=5, bucket_ms=10)
    rounds = _scan(fields, scan)
    # Four times what was seen each round while nothing turns up, at most MAX_CHUNK.
    assert [len(sent[0].split()) for sent in rounds] == [3, 8, 40, 200, 450]
    assert len(scan.rows) == 200


def test_scan_lists_the_buckets_of_a_sparse_history() -> None:
    """Far more bucket numbers in the window than buckets: one HKEYS instead of many rounds."""
    fields = _hash(10, {0: [(0, 1.0)], 999: [(9, 2.0)], 5000: [(1, 3.0)]})
    scan = HistoryScan("k", "speed", low=1, high=10**6, want=5, bucket_ms=10)
    assert _scan(fields, scan) == [["meta 0 1", "HLEN"], ["HKEYS"], ["999 5000"]]
    assert scan.rows == [(9999, "speed", 2.0), (50001, "speed", 3.0)]


def test_scan_follows_the_bucket_size_of_the_history() -> None:
    """A history created under another history_bucket setting is read with its own size."""
    fields = _hash(1000, {3: [(500, 1.0)], 4: [(0, 2.0)]})
    scan = HistoryScan("k", "speed", low=3400, high=4000, want=10, bucket_ms=100)
    assert _scan(fields, scan) == [["meta 34 35", "HLEN"], ["3 4"]]
    assert scan.rows == [(3500, "speed", 1.0), (4000, "speed", 2.0)]


def test_scan_of_an_empty_range_asks_nothing() -> None:
    assert HistoryScan("k", "speed", low=5, high=4, want=1, bucket_ms=10).done


def test_scan_reports_a_damaged_field_name() -> None:
    fields = {**_hash(10, {0: [(0, 1.0)], 9999: [(0, 1.0)]}), b"junk": b""}
    with pytest.raises(StorageError, match="damaged history: field b'junk'"):
        _scan(fields, HistoryScan("k", "speed", low=1, high=10**6, want=5, bucket_ms=10))


# --- integration: bucket edges on the real Redis -----------------------------------------------


def _writer(
    client: redis.Redis, key_prefix: str, retention: timedelta, bucket_ms: int = B
) -> ReadingWriter:
    settings = StorageSettings(
        key_prefix=f"{key_prefix}{uuid.uuid4().hex[:8]}:",
        history_retention=retention,
        history_bucket=timedelta(milliseconds=bucket_ms),
    )
    return ReadingWriter(client, settings)


def _stored(client: redis.Redis, writer: ReadingWriter) -> list[int]:
    """The ms after T0 of every reading in the battery history."""
    return [ms - T0_MS for ms, _ in history_rows(client, writer.keys.history(SENSOR, "battery"))]


def _read(
    redis_url: str,
    writer: ReadingWriter,
    start: datetime,
    end: datetime,
    limit: int = 1000,
    bucket_ms: int = B,
) -> list[Reading]:
    """Every battery reading in [start, end] through ReadingReader, page by page.

    ``bucket_ms`` is the reader's setting: a guess, the history knows its own.
    """
    settings = StorageSettings(
        key_prefix=writer.keys.prefix, history_bucket=timedelta(milliseconds=bucket_ms)
    )

    async def collect() -> list[Reading]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            reader = ReadingReader(client, settings, CATALOGUE)
            items: list[Reading] = []
            cursor = None
            while True:
                page = await reader.history(
                    SENSOR,
                    start=start,
                    end=end,
                    sensor_types=["battery"],
                    limit=limit,
                    cursor=cursor,
                )
                items += page.items
                if page.next_cursor is None:
                    return items
                cursor = page.next_cursor
        finally:
            await client.aclose()

    return anyio.run(collect)


def test_records_at_bucket_edges(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    writer = _writer(redis_client, key_prefix, timedelta(hours=1))
    edges = [B - 1, B, 0, 2 * B - 1, 2 * B, 1, 3 * B + B // 2]
    readings = [make_reading(ms, float(i)) for i, ms in enumerate(edges)]
    assert writer.store_many(readings) == [STORED] * len(edges)
    # Found again at every edge: the same value is a duplicate, another one a conflict.
    assert writer.store_many(readings) == [DUPLICATE] * len(edges)
    assert writer.store_many([make_reading(ms, 99.0) for ms in edges]) == [CONFLICT] * len(edges)
    key = writer.keys.history(SENSOR, "battery")
    fields = history_fields(redis_client, key)
    assert fields == {
        str(T0_BUCKET).encode(): _records((0, 2.0), (1, 5.0), (B - 1, 0.0)),
        str(T0_BUCKET + 1).encode(): _records((0, 1.0), (B - 1, 3.0)),
        str(T0_BUCKET + 2).encode(): _records((0, 4.0)),
        str(T0_BUCKET + 3).encode(): _records((B // 2, 6.0)),
        b"meta": f"{B}:{T0_MS + 3500}:{T0_BUCKET}".encode(),
    }
    expected = sorted(readings, key=lambda r: r.timestamp)
    assert _read(redis_url, writer, T0, T0 + timedelta(hours=1)) == expected
    # Bounds exactly on bucket edges are inclusive on both sides.
    edge = timedelta(milliseconds=B)
    assert _read(redis_url, writer, T0 + edge, T0 + 2 * edge) == [
        r for r in expected if T0 + edge <= r.timestamp <= T0 + 2 * edge
    ]
    assert _read(redis_url, writer, T0 + edge - timedelta(milliseconds=1), T0 + edge) == [
        readings[0],
        readings[1],
    ]


def test_many_buckets_any_order_same_bytes_and_pages(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    rng = random.Random(7)
    moments = sorted(rng.sample(range(300 * B), 1500))
    readings = [make_reading(ms, rng.randrange(400) / 4) for ms in moments]
    delivery = readings + rng.sample(readings, 200)
    rng.shuffle(delivery)
    in_order = _writer(redis_client, key_prefix, timedelta(days=1))
    shuffled = _writer(redis_client, key_prefix, timedelta(days=1))
    assert set(in_order.store_many(readings)) == {STORED}
    assert shuffled.store_many(delivery).count(STORED) == len(readings)
    history = in_order.keys.history(SENSOR, "battery")
    assert history_fields(redis_client, shuffled.keys.history(SENSOR, "battery")) == (
        history_fields(redis_client, history)
    )
    # The rollups' partial sums may differ in their bytes, never in what they add up to.
    assert check_rollups(redis_client, history) == check_rollups(
        redis_client, shuffled.keys.history(SENSOR, "battery")
    )
    assert _stored(redis_client, in_order) == moments
    end = T0 + timedelta(days=1)
    for limit in (1, 7, 119, 1000):
        assert _read(redis_url, shuffled, T0, end, limit) == readings, limit
    assert _read(redis_url, shuffled, T0, end, 100, bucket_ms=7) == readings


def test_trimming_across_buckets(redis_client: redis.Redis, key_prefix: str) -> None:
    writer = _writer(redis_client, key_prefix, timedelta(milliseconds=2500))
    writer.store_many([make_reading(ms, 1.0) for ms in range(0, 5001, 250)])
    # Window [2500, 5000]: buckets 0 and 1 gone, bucket 2 from its offset 500 on.
    assert _stored(redis_client, writer) == list(range(2500, 5001, 250))
    fields = history_fields(redis_client, writer.keys.history(SENSOR, "battery"))
    assert sorted(fields) == sorted([str(T0_BUCKET + n).encode() for n in (2, 3, 4, 5)] + [b"meta"])
    assert writer.store(make_reading(2499, 2.0)) is EXPIRED
    assert writer.store(make_reading(2500, 2.0)) is CONFLICT  # the window's first, 1.0 stored
    assert writer.store(make_reading(2500, 1.0)) is DUPLICATE
    assert writer.store(make_reading(2501, 2.0)) is STORED
    # The window starting exactly on a bucket edge keeps that bucket whole, drops the one before.
    assert writer.store(make_reading(6000, 3.0)) is STORED  # window [3500, 6000]
    assert writer.store(make_reading(6500, 3.0)) is STORED  # window [4000, 6500]
    assert _stored(redis_client, writer) == [4000, 4250, 4500, 4750, 5000, 6000, 6500]
    # And one ms before an edge keeps the last offset of the bucket before it.
    assert writer.store(make_reading(4999 + 2500, 3.0)) is STORED  # window [4999, 7499]
    assert _stored(redis_client, writer) == [5000, 6000, 6500, 7499]
    assert writer.store(make_reading(7498 - 2500, 3.0)) is EXPIRED
    assert writer.store(make_reading(7499 - 2500, 3.0)) is STORED
    assert _stored(redis_client, writer)[:2] == [4999, 5000]


@pytest.mark.parametrize("jump_buckets", [3, 10_000])
def test_a_jump_ahead_drops_every_bucket_behind_the_window(
    redis_client: redis.Redis, key_prefix: str, jump_buckets: int
) -> None:
    """By bucket number for a short jump, by HKEYS when the jump spans more than there are."""
    writer = _writer(redis_client, key_prefix, timedelta(milliseconds=2 * B), bucket_ms=10)
    writer.store_many([make_reading(ms, 1.0) for ms in range(0, 2 * B, 10)])
    assert len(history_fields(redis_client, writer.keys.history(SENSOR, "battery"))) == 201
    newest = 2 * B - 10 + jump_buckets * 10
    assert writer.store(make_reading(newest, 2.0)) is STORED
    assert _stored(redis_client, writer) == [
        ms for ms in range(0, 2 * B, 10) if ms >= newest - 2 * B
    ] + [newest]


def test_many_dead_buckets_go_in_chunks(redis_client: redis.Redis, key_prefix: str) -> None:
    writer = _writer(redis_client, key_prefix, timedelta(seconds=10), bucket_ms=1)
    writer.store_many([make_reading(ms, 1.0) for ms in range(2500)])
    assert writer.store(make_reading(10**6, 2.0)) is STORED
    fields = history_fields(redis_client, writer.keys.history(SENSOR, "battery"))
    assert sorted(fields) == sorted([str(T0_MS + 10**6).encode(), b"meta"])


def test_history_keeps_the_bucket_size_it_was_created_with(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    first = _writer(redis_client, key_prefix, timedelta(hours=1), bucket_ms=B)
    first.store_many([make_reading(ms, 1.0) for ms in (0, 1500)])
    other_setting = ReadingWriter(
        redis_client,
        StorageSettings(
            key_prefix=first.keys.prefix,
            history_retention=timedelta(hours=1),
            history_bucket=timedelta(minutes=7),
        ),
    )
    assert other_setting.store_many([make_reading(ms, 2.0) for ms in (2500, 500, 1500)]) == [
        STORED,
        STORED,
        CONFLICT,  # 1.0 stored at 1500 under the history's own bucket size
    ]
    fields = history_fields(redis_client, first.keys.history(SENSOR, "battery"))
    assert sorted(fields) == sorted([str(T0_BUCKET + n).encode() for n in (0, 1, 2)] + [b"meta"])
    assert fields[b"meta"].startswith(f"{B}:".encode())
    # The reader's setting differs too: it follows the history's own size.
    got = _read(redis_url, first, T0, T0 + timedelta(hours=1), bucket_ms=120_000)
    assert [item.timestamp - T0 for item in got] == [
        timedelta(milliseconds=ms) for ms in (0, 500, 1500, 2500)
    ]


def test_a_longer_retention_reaches_further_back(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    short = _writer(redis_client, key_prefix, timedelta(milliseconds=B))
    short.store_many([make_reading(ms, 1.0) for ms in (5000, 10_000)])
    longer = ReadingWriter(
        redis_client,
        StorageSettings(
            key_prefix=short.keys.prefix,
            history_retention=timedelta(seconds=60),
            history_bucket=timedelta(milliseconds=B),
        ),
    )
    assert longer.store(make_reading(2000, 2.0)) is STORED
    assert _stored(redis_client, short) == [2000, 10_000]
    meta = redis_client.hget(short.keys.history(SENSOR, "battery"), "meta")
    assert meta == f"{B}:{T0_MS + 10_000}:{T0_BUCKET + 2}".encode()  # a new first bucket
    assert [r.value for r in _read(redis_url, short, T0, T0 + timedelta(minutes=1))] == [2.0, 1.0]


def test_values_come_back_bit_for_bit(redis_client: redis.Redis, key_prefix: str) -> None:
    values = [0.1 + 0.2, 5e-324, 1.7976931348623157e308, -0.0, 1 / 3, -123456.789e-7]
    writer = _writer(redis_client, key_prefix, timedelta(hours=1))
    readings = [
        Reading.model_construct(**{**make_reading(i, 1.0, "voltage").__dict__, "value": value})
        for i, value in enumerate(values)
    ]
    writer.store_many(readings)
    rows = history_rows(redis_client, writer.keys.history(SENSOR, "voltage"))
    assert [struct.pack(">d", value) for _, value in rows] == [struct.pack(">d", v) for v in values]


def test_reading_from_the_epoch_to_far_ahead_is_clamped(
    redis_client: redis.Redis, redis_url: str, key_prefix: str
) -> None:
    """The API's default start is the epoch: 1 ms buckets must not mean 10^12 fields to ask."""
    writer = _writer(redis_client, key_prefix, timedelta(hours=1), bucket_ms=1)
    readings = [make_reading(ms, 1.0) for ms in (0, 1, 5000)]
    writer.store_many(readings)
    start, end = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
    assert _read(redis_url, writer, start, end, limit=2) == readings


def test_a_damaged_bucket_fails_the_write(redis_client: redis.Redis, key_prefix: str) -> None:
    writer = _writer(redis_client, key_prefix, timedelta(hours=1))
    writer.store(make_reading(0, 1.0))
    redis_client.hset(writer.keys.history(SENSOR, "battery"), str(T0_BUCKET), b"short")
    with pytest.raises(StorageError, match="damaged history bucket"):
        writer.store(make_reading(1, 1.0))

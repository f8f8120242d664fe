"""The fleet catalogue on the real Redis: the index is exact under any order of deliveries, follows
retention, and pages and counts over the shards without gaps or repeats."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
import redis
import redis.asyncio
from _storage_helpers import CATALOGUE, T0, T0_MS, make_reading
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ev_schemas import Reading, timestamp_ms, to_epoch_ms
from ev_storage import (
    InvalidArgument,
    InvalidCursor,
    KeyLayout,
    ReadingWriter,
    StorageSettings,
    UnknownSensorType,
    catalogue_reader,
)
from ev_storage.catalogue import shard_of
from ev_storage.catalogue_reader import (
    SCAN_BUDGET,
    CatalogueFilter,
    CatalogueReader,
    seen_member,
)
from ev_storage.cursor import encode_catalogue_cursor

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

HOUR_MS = 3_600_000
TYPES = ("battery", "speed", "temperature")
REDIS_EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def catalogue_state(client: redis.Redis, keys: KeyLayout, shards: int) -> dict[str, Any]:
    """Every non-empty key of the catalogue's shards, decoded, comparable with ``==``; checks
    on the way that each group's purge hint is at most the earliest expiry of its shard."""
    state: dict[str, Any] = {}
    for n in range(shards):
        base = keys.catalogue_shard(n)
        types = sorted(t.decode() for t in client.smembers(f"{base}:types"))  # type: ignore[union-attr]
        parts: dict[str, Any] = {
            "ids": [m.decode() for m in client.zrange(f"{base}:ids", 0, -1)],  # type: ignore[union-attr]
            "seen": [m.decode() for m in client.zrange(f"{base}:seen", 0, -1)],  # type: ignore[union-attr]
        }
        for sensor_type in types:
            for kind in ("type", "expires"):
                scored = client.zrange(f"{base}:{kind}:{sensor_type}", 0, -1, withscores=True)
                parts[f"{kind}:{sensor_type}"] = {m.decode(): int(s) for m, s in scored}  # type: ignore[union-attr]
        expiries = [e for k, v in parts.items() if k.startswith("expires:") for e in v.values()]
        if expiries:
            hint = client.zscore(f"{keys.catalogue_group(n % 64)}:purge", str(n))
            assert hint is not None, n
            assert hint <= min(expiries), (n, hint, expiries)
        state[str(n)] = {name: value for name, value in parts.items() if value}
    return {n: parts for n, parts in state.items() if parts}


def expected_state(
    client: redis.Redis, keys: KeyLayout, shards: int, readings: Iterable[Reading]
) -> dict[str, Any]:
    """The index that the set of ``readings`` calls for: each (sensor, type) with its newest
    reading time and its history key's expiry, each sensor with its newest time overall."""
    newest: dict[tuple[str, str], int] = {}
    for reading in readings:
        pair = (reading.sensor_id, reading.sensor_type)
        newest[pair] = max(newest.get(pair, timestamp_ms(reading)), timestamp_ms(reading))
    state: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for (sensor_id, sensor_type), ms in newest.items():
        seen[sensor_id] = max(seen.get(sensor_id, ms), ms)
        parts = state.setdefault(str(shard_of(sensor_id, shards)), {})
        parts.setdefault(f"type:{sensor_type}", {})[sensor_id] = ms
        expiry = client.pexpiretime(keys.history(sensor_id, sensor_type))
        parts.setdefault(f"expires:{sensor_type}", {})[sensor_id] = expiry
    for sensor_id, ms in seen.items():
        parts = state[str(shard_of(sensor_id, shards))]
        parts.setdefault("ids", []).append(sensor_id)
        parts.setdefault("seen", []).append(seen_member(ms, sensor_id))
    for parts in state.values():
        parts["ids"].sort()
        parts["seen"].sort()
    return state


# --- the index ------------------------------------------------------------------------------

readings_st = st.lists(
    st.builds(
        make_reading,
        # Two hours of readings against a one-hour retention: some arrive EXPIRED.
        st.integers(0, 2 * HOUR_MS // 60_000).map(lambda minute: minute * 60_000),
        st.sampled_from([1.0, 2.0]),  # repeated times with another value conflict
        st.sampled_from(TYPES),
        st.sampled_from(["a", "ev_001", "ev_002", "ev-9.z", "Z"]),
    ),
    min_size=1,
    max_size=30,
)


@REDIS_EXAMPLES
@given(
    readings=readings_st,
    order=st.randoms(use_true_random=False),
    batch=st.integers(1, 12),
    shards=st.sampled_from([1, 3, 64, 130]),
)
def test_the_index_is_a_function_of_the_set_of_readings(
    redis_client: redis.Redis,
    key_prefix: str,
    readings: list[Reading],
    order: Any,
    batch: int,
    shards: int,
) -> None:
    settings_ = StorageSettings(
        key_prefix=f"{key_prefix}{uuid.uuid4().hex[:8]}:",
        history_retention=timedelta(hours=1),
        catalogue_shards=shards,
    )
    writer = ReadingWriter(redis_client, settings_)
    # Any order, every reading delivered once or twice, in batches of any size.
    deliveries = readings + [r for r in readings if order.random() < 0.5]
    order.shuffle(deliveries)
    for start in range(0, len(deliveries), batch):
        writer.store_many(deliveries[start : start + batch])
    state = catalogue_state(redis_client, writer.keys, shards)
    assert state == expected_state(redis_client, writer.keys, shards, readings)
    # A redelivery of everything changes nothing.
    writer.store_many(deliveries)
    assert catalogue_state(redis_client, writer.keys, shards) == state


def test_a_lost_catalogue_update_is_repaired_by_the_redelivery(
    redis_client: redis.Redis, settings: StorageSettings
) -> None:
    writer = ReadingWriter(redis_client, settings)
    reading = make_reading(0, 50.0)
    writer.store(reading)
    shards = settings.catalogue_shards
    expected = catalogue_state(redis_client, writer.keys, shards)
    # As if the consumer died between the write and the catalogue's update.
    for key in redis_client.scan_iter(match=f"{settings.key_prefix}catalogue:*"):
        redis_client.delete(key)
    assert catalogue_state(redis_client, writer.keys, shards) == {}
    writer.store(reading)  # redelivered: a duplicate, which updates the catalogue again
    assert catalogue_state(redis_client, writer.keys, shards) == expected


def test_a_shard_keeps_to_one_slot_and_shards_spread(settings: StorageSettings) -> None:
    keys = KeyLayout(settings.key_prefix)
    assert keys.catalogue_shard(17) == f"{settings.key_prefix}catalogue:{{c:17}}:17"
    assert keys.catalogue_shard(81) == f"{settings.key_prefix}catalogue:{{c:17}}:81"
    assert keys.catalogue_type(81, "speed") == f"{keys.catalogue_shard(81)}:type:speed"
    counts = [0] * 1024
    for n in range(100_000):
        counts[shard_of(f"ev_{n:06d}", 1024)] += 1
    mean = 100_000 / 1024
    # About 100 sensors per shard: each sorted set stays under Redis's listpack limit (128).
    assert max(counts) <= 128
    assert 0.6 * mean < min(counts) <= max(counts) < 1.4 * mean


# --- retention ------------------------------------------------------------------------------


async def test_sensors_leave_when_their_readings_have_all_expired(
    redis_client: redis.Redis, async_client: redis.asyncio.Redis, key_prefix: str
) -> None:
    short = StorageSettings(key_prefix=key_prefix, history_retention=timedelta(milliseconds=400))
    writer = ReadingWriter(redis_client, short)
    reader = CatalogueReader(async_client, short, CATALOGUE)
    writer.store_many(
        [make_reading(0, 1.0, "battery", "ev_a"), make_reading(0, 1.0, "speed", "ev_b")]
    )
    # ev_b's speed stays alive; ev_b's battery and ev_a expire.
    writer.store_many([make_reading(5, 2.0, "battery", "ev_b")])
    deadline = time.monotonic() + 5
    for tick in range(10**6):
        # Newer readings of ev_b's speed keep its history (and ev_b) alive.
        writer.store_many([make_reading(10 + tick, 3.0, "speed", "ev_b")])
        page = await reader.page(CatalogueFilter())
        if [item.sensor_id for item in page.items] == ["ev_b"] and "battery" not in page.items[
            0
        ].types:
            break
        assert time.monotonic() < deadline, page
        time.sleep(0.05)
    assert await reader.count(CatalogueFilter()) == 1
    assert await reader.count(CatalogueFilter(sensor_type="battery")) == 0
    # The history keys are gone too: the catalogue followed them, not a guess.
    assert not redis_client.exists(writer.keys.history("ev_a", "battery"))
    assert not redis_client.exists(writer.keys.history("ev_b", "battery"))
    # Nothing of ev_a is left in the shard's keys.
    state = catalogue_state(redis_client, writer.keys, short.catalogue_shards)
    assert "ev_a" not in repr(state)


# --- pages and counts -----------------------------------------------------------------------


@pytest.fixture(params=[1, 16, 200], ids=lambda n: f"{n}-shards")
def fleet(
    request: pytest.FixtureRequest, redis_client: redis.Redis, key_prefix: str
) -> tuple[StorageSettings, dict[str, dict[str, int]]]:
    """300 sensors, 1-3 types each, last seen at various times (some tied), over one shard, 16
    (one per group) or 200 (groups of 3-4, merged by the script)."""
    settings_ = StorageSettings(key_prefix=key_prefix, catalogue_shards=request.param)
    writer = ReadingWriter(redis_client, settings_)
    expected: dict[str, dict[str, int]] = {}
    readings = []
    for n in range(300):
        sensor_id = f"{'ev' if n % 5 else 'bus'}_{n:04d}"
        for k, sensor_type in enumerate(TYPES[: 1 + n % 3]):
            ms = (n % 37) * 1000 + k * 100  # ties in the last-seen order across sensors
            readings.append(make_reading(ms, 1.0, sensor_type, sensor_id))
            expected.setdefault(sensor_id, {})[sensor_type] = T0_MS + ms
    writer.store_many(readings)
    return settings_, expected


def _matching(
    expected: dict[str, dict[str, int]], where: CatalogueFilter
) -> dict[str, dict[str, int]]:
    low = None if where.seen_after is None else to_epoch_ms(where.seen_after)
    high = None if where.seen_before is None else to_epoch_ms(where.seen_before)
    return {
        sensor_id: types
        for sensor_id, types in expected.items()
        if sensor_id.startswith(where.prefix)
        and (where.sensor_type is None or where.sensor_type in types)
        and (low is None or max(types.values()) >= low)
        and (high is None or max(types.values()) <= high)
    }


FILTERS = [
    CatalogueFilter(),
    CatalogueFilter(prefix="ev_01"),
    CatalogueFilter(prefix="bus"),
    CatalogueFilter(prefix="nobody"),
    CatalogueFilter(sensor_type="temperature"),
    CatalogueFilter(
        seen_after=T0 + timedelta(seconds=10), seen_before=T0 + timedelta(seconds=20.1)
    ),
    CatalogueFilter(prefix="ev_02", sensor_type="speed", seen_after=T0 + timedelta(seconds=30)),
    CatalogueFilter(seen_before=T0 + timedelta(seconds=3)),
]


@pytest.mark.parametrize(
    ("bytewise", "budget"),
    [(False, SCAN_BUDGET), (True, SCAN_BUDGET), (False, 1)],
    ids=["server-collation", "bytewise", "tiny-scan-budget"],
)
@pytest.mark.parametrize("where", FILTERS, ids=repr)
async def test_pages_cover_every_match_once_in_order_and_counts_agree(
    async_client: redis.asyncio.Redis,
    fleet: tuple[StorageSettings, dict[str, dict[str, int]]],
    where: CatalogueFilter,
    bytewise: bool,
    budget: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tiny budget stops shards mid-scan (4 x a group's share of the page): pages stay exact.
    monkeypatch.setattr(catalogue_reader, "SCAN_BUDGET", budget)
    settings_, expected = fleet
    # The script merges a group's shards by Lua's < (the server's locale collates by bytes
    # here) or byte by byte (any other locale): both give byte order.
    reader = CatalogueReader(async_client, settings_, CATALOGUE, bytewise=bytewise)
    matching = _matching(expected, where)
    assert await reader.count(where) == len(matching)
    by_id = sorted(matching)
    by_seen = sorted(matching, key=lambda s: (max(matching[s].values()), s), reverse=True)
    for order, wanted in (("id", by_id), ("last_seen", by_seen)):
        for limit in (2, 23, 1000):
            got: list[str] = []
            cursor = None
            while True:
                page = await reader.page(where, order=order, limit=limit, cursor=cursor)
                assert len(page.items) <= limit
                for item in page.items:
                    assert item.types == matching[item.sensor_id]
                got += [item.sensor_id for item in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
                assert len(page.items) == limit
            assert got == wanted, (order, limit)


async def test_a_cursor_is_a_position_new_sensors_do_not_shift_pages(
    redis_client: redis.Redis,
    async_client: redis.asyncio.Redis,
    fleet: tuple[StorageSettings, dict[str, dict[str, int]]],
) -> None:
    settings_, expected = fleet
    reader = CatalogueReader(async_client, settings_, CATALOGUE)
    first = await reader.page(CatalogueFilter(), limit=10)
    assert first.next_cursor is not None
    # A sensor before the cursor appears; the next page starts where the last one ended.
    ReadingWriter(redis_client, settings_).store(make_reading(0, 1.0, "battery", "bus_0000a"))
    second = await reader.page(CatalogueFilter(), limit=10, cursor=first.next_cursor)
    assert second.items[0].sensor_id == sorted(expected)[10]


async def test_include_latest_reads_each_items_latest_readings(
    async_client: redis.asyncio.Redis, fleet: tuple[StorageSettings, dict[str, dict[str, int]]]
) -> None:
    settings_, _ = fleet
    reader = CatalogueReader(async_client, settings_, CATALOGUE)
    page = await reader.page(CatalogueFilter(prefix="ev_000"), limit=2)
    latest = await reader.latest_raw(page.items)
    assert [sorted(found) for found in latest] == [sorted(item.types) for item in page.items]
    for item, found in zip(page.items, latest, strict=True):
        for sensor_type, raw in found.items():
            assert Reading.model_validate_json(raw).sensor_id == item.sensor_id
            assert timestamp_ms(Reading.model_validate_json(raw)) == item.types[sensor_type]
    assert await reader.latest_raw([]) == []


async def test_bad_arguments_are_refused_with_a_reason(
    async_client: redis.asyncio.Redis, settings: StorageSettings
) -> None:
    reader = CatalogueReader(async_client, settings, CATALOGUE)
    with pytest.raises(InvalidArgument, match="prefix 'ev 0' must be"):
        await reader.count(CatalogueFilter(prefix="ev 0"))
    with pytest.raises(UnknownSensorType, match="unknown sensor type 'sonar'"):
        await reader.page(CatalogueFilter(sensor_type="sonar"))
    with pytest.raises(InvalidArgument, match="seen_after is after seen_before"):
        await reader.count(CatalogueFilter(seen_after=T0, seen_before=T0 - timedelta(seconds=1)))
    with pytest.raises(InvalidArgument, match="limit"):
        await reader.page(CatalogueFilter(), limit=0)
    with pytest.raises(InvalidArgument, match="order"):
        await reader.page(CatalogueFilter(), order="size")
    page = await reader.page(CatalogueFilter(), order="id")
    assert page.next_cursor is None
    with pytest.raises(InvalidCursor, match="malformed cursor"):
        await reader.page(CatalogueFilter(), cursor="not base64!")
    by_id = encode_catalogue_cursor("id", "ev_001")
    with pytest.raises(InvalidCursor, match="sorted by id, not by last_seen"):
        await reader.page(CatalogueFilter(), order="last_seen", cursor=by_id)


def test_rebuild_indexes_the_histories_that_exist(
    redis_client: redis.Redis, settings: StorageSettings
) -> None:
    writer = ReadingWriter(redis_client, settings)
    readings = [
        make_reading(n * 1000, 1.0, sensor_type, f"ev_{n % 7}")
        for n in range(40)
        for sensor_type in TYPES[: 1 + n % 3]
    ]
    writer.store_many(readings)
    shards = settings.catalogue_shards
    expected = catalogue_state(redis_client, writer.keys, shards)
    # As after an upgrade from a version without the catalogue.
    for key in redis_client.scan_iter(match=f"{settings.key_prefix}catalogue:*"):
        redis_client.delete(key)
    redis_client.set(f"{settings.key_prefix}sensor:{{ev_0}}:notes", b"not a history")
    histories = len({(r.sensor_id, r.sensor_type) for r in readings})
    assert writer.catalogue.rebuild(batch=4) == histories
    assert catalogue_state(redis_client, writer.keys, shards) == expected
    assert writer.catalogue.rebuild() == histories  # again: nothing changes
    assert catalogue_state(redis_client, writer.keys, shards) == expected

"""ev-storage's writer and reader on a three-master Redis Cluster, unchanged.

The sensors are chosen so that their keys fall on every master (slots are split in three equal
ranges by ``redis-cli --cluster create``, and a sensor's slot depends on its id only).
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from ev_schemas import AggregationPlan, AlarmRule, Reading, default_catalogue
from ev_storage import (
    AlarmFilter,
    AlarmReader,
    ReadingReader,
    ReadingWriter,
    StorageSettings,
    WriteOutcome,
)
from ev_storage.aggregate import aggregate_history
from ev_storage.writer import script_source
from tests.cluster.redis_cluster import PrivateRedisCluster
from tests.support import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CATALOGUE = default_catalogue()
T0 = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
SENSORS = [f"ev_{n:03d}" for n in range(9)]
STORED, DUPLICATE = WriteOutcome.STORED, WriteOutcome.DUPLICATE
CONFLICT = WriteOutcome.CONFLICT


def reading(sensor_id: str, seconds: int, value: float, sensor_type: str = "battery") -> Reading:
    return Reading(
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        timestamp=T0 + timedelta(seconds=seconds),
        value=value,
        unit=CATALOGUE[sensor_type].unit,
    )


def owners(client: redis.cluster.RedisCluster, writer: ReadingWriter) -> dict[str, str]:
    """The master that holds each sensor's keys, by node name."""
    return {sensor: _node_of(client, writer.keys.summary(sensor)) for sensor in SENSORS}


def _node_of(client: redis.cluster.RedisCluster, key: str) -> str:
    node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
    return str(node.name)


def state(client: redis.cluster.RedisCluster, writer: ReadingWriter, sensor: str) -> object:
    keys = writer.keys
    return (
        client.get(keys.latest(sensor, "battery")),
        client.hgetall(keys.history(sensor, "battery")),
        client.hgetall(keys.summary(sensor)),
    )


@pytest.fixture
def writer(
    cluster_client: redis.cluster.RedisCluster, storage_settings: StorageSettings
) -> ReadingWriter:
    return ReadingWriter(cluster_client, storage_settings)


def test_sensors_spread_over_every_master(
    cluster_client: redis.cluster.RedisCluster, writer: ReadingWriter
) -> None:
    masters = {node.name for node in cluster_client.get_primaries()}  # type: ignore[no-untyped-call]
    assert len(masters) == 3
    assert set(owners(cluster_client, writer).values()) == masters


def test_writes_are_idempotent_and_latest_is_newest_by_time(
    cluster_client: redis.cluster.RedisCluster, writer: ReadingWriter
) -> None:
    # Out of order, with a conflict (same sensor, type and time, another value: first write
    # wins) and a duplicate.
    batch = [
        reading(sensor, seconds, value)
        for sensor in SENSORS
        for seconds, value in ((20, 50.0), (10, 60.0), (30, 40.0), (10, 99.0), (20, 50.0))
    ]
    outcomes = writer.store_many(batch)
    assert outcomes == [STORED, STORED, STORED, CONFLICT, DUPLICATE] * len(SENSORS)
    before = {sensor: state(cluster_client, writer, sensor) for sensor in SENSORS}
    # The whole batch again (a redelivery): nothing changes anywhere; the conflict stays one.
    assert writer.store_many(batch) == [DUPLICATE, DUPLICATE, DUPLICATE, CONFLICT, DUPLICATE] * len(
        SENSORS
    )
    assert {sensor: state(cluster_client, writer, sensor) for sensor in SENSORS} == before
    for sensor in SENSORS:
        latest = cluster_client.get(writer.keys.latest(sensor, "battery"))
        assert latest is not None
        assert Reading.model_validate_json(latest) == reading(sensor, 30, 40.0)


async def test_history_pages_and_summary_read_back(
    cluster_client: redis.cluster.RedisCluster,
    async_cluster_client: redis.asyncio.cluster.RedisCluster,
    writer: ReadingWriter,
    storage_settings: StorageSettings,
) -> None:
    stored = {
        sensor: [
            reading(sensor, s, float(s), sensor_type)
            for s in range(7)
            for sensor_type in ("battery", "speed")
        ]
        for sensor in SENSORS
    }
    writer.store_many([item for items in stored.values() for item in items])
    reader = ReadingReader(async_cluster_client, storage_settings, CATALOGUE)
    for sensor, expected in stored.items():
        items: list[Reading] = []
        cursor = None
        while True:
            page = await reader.history(
                sensor, start=T0, end=T0 + timedelta(minutes=1), limit=3, cursor=cursor
            )
            items += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert items == sorted(expected, key=lambda r: (r.timestamp, r.sensor_type))
        summary = await reader.summary(sensor)
        assert summary is not None
        battery = summary.types["battery"]
        assert (battery.count, battery.min, battery.max) == (7, 0.0, 6.0)
        latest = await reader.latest_all_raw(sensor)
        assert set(latest) == {"battery", "speed"}
    assert await reader.ping() >= 0


def test_a_node_that_lost_the_script_gets_it_again(
    redis_cluster: PrivateRedisCluster, writer: ReadingWriter
) -> None:
    """A restarted or new master has no scripts: NOSCRIPT, then SCRIPT LOAD on every primary."""
    writer.store(reading(SENSORS[0], 0, 1.0))  # the script is loaded everywhere
    flushed = redis_cluster.ports[1]
    with redis_cluster.node_client(flushed) as node:
        node.script_flush()
    batch = [reading(sensor, 1, 2.0) for sensor in SENSORS]
    assert writer.store_many(batch) == [STORED] * len(batch)
    sha = hashlib.sha1(script_source().encode()).hexdigest()
    with redis_cluster.node_client(flushed) as node:
        assert node.script_exists(sha) == [True]


def test_live_messages_reach_a_subscriber_on_any_node(
    redis_cluster: PrivateRedisCluster,
    cluster_client: redis.cluster.RedisCluster,
    writer: ReadingWriter,
) -> None:
    """The write script's PUBLISH is broadcast over the cluster bus: one node hears them all."""
    with redis_cluster.node_client(redis_cluster.ports[0]) as node, node.pubsub() as pubsub:
        pubsub.subscribe(*(writer.keys.live_channel(sensor) for sensor in SENSORS))
        confirmed = 0
        while confirmed < len(SENSORS):
            message = pubsub.get_message(timeout=5)
            assert message is not None, "no subscription confirmation"
            confirmed += message["type"] == "subscribe"
        writer.store_many([reading(sensor, 5, 55.0) for sensor in SENSORS])
        heard: set[str] = set()

        def all_heard() -> bool:
            message = pubsub.get_message(timeout=0.1)
            if message is not None and message["type"] == "message":
                heard.add(Reading.model_validate_json(message["data"]).sensor_id)
            return heard == set(SENSORS)

        wait_until(all_heard, 10, "a live message of every sensor")
    assert len(set(owners(cluster_client, writer).values())) == 3


async def test_aggregates_through_rollups_match_every_reading_on_every_master(
    async_cluster_client: redis.asyncio.cluster.RedisCluster,
    writer: ReadingWriter,
    storage_settings: StorageSettings,
) -> None:
    """The rollups live in each history's hash (its slot): out of order and redelivered, on
    all three masters, the 15-minute and minute buckets they give equal those from every
    reading, and they are used (the ragged first and last minutes come from raw readings)."""
    rng = random.Random(3)
    batch = [
        reading(sensor, second, float(rng.randrange(1000)) / 8)
        for sensor in SENSORS
        for second in range(0, 2 * 3600, 7)
    ]
    rng.shuffle(batch)
    writer.store_many(batch + batch[:500])  # some delivered twice: duplicates change nothing
    reader = ReadingReader(async_cluster_client, storage_settings, CATALOGUE)
    start_ms = int(T0.timestamp() * 1000) + 30_000
    for interval in ("15m", "1m", "1h"):
        plan = AggregationPlan.make(start_ms, start_ms + 2 * 3_600_000, interval=interval)
        for sensor in SENSORS:
            fast = await aggregate_history(reader, sensor, "battery", plan)
            slow = await aggregate_history(reader, sensor, "battery", plan, use_rollups=False)
            assert fast == slow
            assert sum(b.count for b in fast) == len(range(0, 2 * 3600, 7)) - 5  # 0..28 s
    fields = await async_cluster_client.hkeys(writer.keys.history(SENSORS[0], "battery"))
    assert b"rollups" in fields
    assert any(name.startswith(b"q") for name in fields)


async def test_alarms_and_their_fleet_index_on_every_master(
    async_cluster_client: redis.asyncio.cluster.RedisCluster,
    cluster_client: redis.cluster.RedisCluster,
    storage_settings: StorageSettings,
) -> None:
    """The episodes live in each sensor's slot, the fleet index in 64 groups over the slots:
    a page of the fleet's alarms gathers them from all three masters, newest first."""
    rule = AlarmRule.model_validate({"id": "low", "sensor_type": "battery", "below": 20})
    writer = ReadingWriter(cluster_client, storage_settings, [rule])
    for n, sensor in enumerate(SENSORS):
        writer.store_many([reading(sensor, n, 10.0), reading(sensor, 100 + n, 50.0)])
    assert len(writer.last_transitions) == 2  # the last sensor's: raised, then cleared
    alarms = AlarmReader(async_cluster_client, storage_settings)
    page, cursor = await alarms.fleet_alarms(AlarmFilter(), limit=4)
    ids = [alarm.alarm_id for alarm in page]
    while cursor is not None:
        page, cursor = await alarms.fleet_alarms(AlarmFilter(), limit=4, cursor=cursor)
        ids += [alarm.alarm_id for alarm in page]
    began = int(T0.timestamp() * 1000)
    assert ids == [f"{s}~battery~low~{began + n * 1000}" for n, s in enumerate(SENSORS)][::-1]
    assert (await alarms.fleet_alarms(AlarmFilter(state="active")))[0] == []
    (first,) = await alarms.sensor_alarms(SENSORS[0])
    assert (first.state, first.cleared) == ("cleared", T0 + timedelta(seconds=100))

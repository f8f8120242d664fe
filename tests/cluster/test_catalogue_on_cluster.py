"""The fleet catalogue on a three-master Redis Cluster: the writer's index updates (one script call
per shard, each in its shard's slot), the API's pages and counts fanned out over every node, and
the fleet-wide aggregate over sensors whose histories live on every master."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio.cluster
import redis.cluster
from fastapi.testclient import TestClient

from ev_api import Settings, create_app
from ev_schemas import Reading, default_catalogue, format_epoch_ms, to_epoch_ms
from ev_schemas.testing import fleet_reference
from ev_storage import (
    CatalogueFilter,
    CatalogueReader,
    ReadingWriter,
    RedisSettings,
    StorageSettings,
)
from ev_storage.catalogue import shard_of
from tests.cluster.redis_cluster import PrivateRedisCluster

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CATALOGUE = default_catalogue()
T0 = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
SENSORS = [f"ev_{n:04d}" for n in range(400)]


def reading(sensor_id: str, seconds: int, sensor_type: str = "battery") -> Reading:
    return Reading(
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        timestamp=T0 + timedelta(seconds=seconds),
        value=50.0,
        unit=CATALOGUE[sensor_type].unit,
    )


@pytest.fixture
def writer(
    cluster_client: redis.cluster.RedisCluster, storage_settings: StorageSettings
) -> ReadingWriter:
    writer = ReadingWriter(cluster_client, storage_settings)
    writer.store_many(
        [reading(sensor, n % 50) for n, sensor in enumerate(SENSORS)]
        + [reading(sensor, 60, "speed") for sensor in SENSORS[::4]]
    )
    return writer


def test_the_shards_spread_over_every_master(
    cluster_client: redis.cluster.RedisCluster, writer: ReadingWriter
) -> None:
    masters = {node.name for node in cluster_client.get_primaries()}  # type: ignore[no-untyped-call]
    holders = {
        cluster_client.get_node_from_key(f"{writer.keys.catalogue_shard(n)}:ids").name  # type: ignore[no-untyped-call]
        for n in range(writer.catalogue.shards)
    }
    assert holders == masters
    # Each sensor is in its own shard's keys, once.
    listed = [
        member.decode()
        for n in range(writer.catalogue.shards)
        for member in cluster_client.zrange(f"{writer.keys.catalogue_shard(n)}:ids", 0, -1)  # type: ignore[union-attr]
    ]
    assert sorted(listed) == SENSORS
    for sensor in SENSORS[:20]:
        key = f"{writer.keys.catalogue_shard(shard_of(sensor, writer.catalogue.shards))}:ids"
        assert cluster_client.zscore(key, sensor) == 0


async def test_pages_and_counts_fan_out_over_the_nodes(
    async_cluster_client: redis.asyncio.cluster.RedisCluster,
    writer: ReadingWriter,
    storage_settings: StorageSettings,
) -> None:
    reader = CatalogueReader(async_cluster_client, storage_settings, CATALOGUE)
    assert await reader.count(CatalogueFilter()) == 400
    assert await reader.count(CatalogueFilter(sensor_type="speed")) == 100
    assert await reader.count(CatalogueFilter(prefix="ev_01")) == 100
    seen_from = T0 + timedelta(seconds=45)
    by_seen = CatalogueFilter(seen_after=seen_from, sensor_type="battery")
    expected = [
        s for n, s in enumerate(SENSORS) if n % 50 >= 45 or n % 4 == 0
    ]  # speed at 60 s makes every fourth sensor recent
    assert await reader.count(by_seen) == len(expected)
    for order, wanted in (("id", sorted(expected)), ("last_seen", None)):
        got: list[str] = []
        cursor = None
        while True:
            page = await reader.page(by_seen, order=order, limit=37, cursor=cursor)
            got += [item.sensor_id for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(got) == sorted(expected)
        assert len(got) == len(set(got))
        if wanted is not None:
            assert got == wanted
    # The latest readings of a page come from each sensor's own slot.
    page = await reader.page(CatalogueFilter(prefix="ev_000"), limit=10)
    latest = await reader.latest_raw(page.items)
    assert [sorted(found) for found in latest] == [sorted(i.types) for i in page.items]


@pytest.fixture
def api(redis_cluster: PrivateRedisCluster, cluster_prefix: str) -> Iterator[TestClient]:
    host, port = redis_cluster.seed
    redis_settings = RedisSettings(
        host=host, port=port, cluster=True, key_prefix=cluster_prefix, socket_timeout_s=2.0
    )
    with contextlib.ExitStack() as stack:
        settings = Settings(redis=redis_settings, api_keys=())
        yield stack.enter_context(TestClient(create_app(settings)))


def test_the_api_lists_and_counts_the_fleet(api: TestClient, writer: ReadingWriter) -> None:
    def count(**query: str) -> Any:
        return api.get("/api/v1/sensors/count", params=query).json()

    assert count() == {"count": 400}
    assert count(sensor_type="speed", prefix="ev_00") == {"count": 25}
    first = api.get("/api/v1/sensors", params={"sort": "last_seen", "limit": 3}).json()
    # Every fourth sensor was last seen at 60 s (speed); ties by id, descending.
    assert [item["sensor_id"] for item in first["items"]] == ["ev_0396", "ev_0392", "ev_0388"]
    assert first["items"][0]["types"] == {
        "battery": "2024-02-01T12:00:46Z",
        "speed": "2024-02-01T12:01:00Z",
    }
    latest = api.get("/api/v1/sensors", params={"prefix": "ev_0000", "include": "latest"}).json()[
        "items"
    ][0]["latest"]
    assert set(latest) == {"battery", "speed"}


async def test_reads_load_the_script_on_nodes_that_lost_it(
    cluster_client: redis.cluster.RedisCluster,
    async_cluster_client: redis.asyncio.cluster.RedisCluster,
    writer: ReadingWriter,
    storage_settings: StorageSettings,
) -> None:
    """After a failover or a restart a primary has no scripts: NOSCRIPT, SCRIPT LOAD, again."""
    cluster_client.script_flush()  # on every primary
    reader = CatalogueReader(async_cluster_client, storage_settings, CATALOGUE)
    assert await reader.count(CatalogueFilter(prefix="ev_03")) == 100
    cluster_client.script_flush()
    writer.store_many([reading("ev_9999", 0)])
    assert await reader.count(CatalogueFilter()) == 401


async def test_rebuild_scans_every_primary(
    cluster_client: redis.cluster.RedisCluster,
    async_cluster_client: redis.asyncio.cluster.RedisCluster,
    writer: ReadingWriter,
    storage_settings: StorageSettings,
) -> None:
    for key in cluster_client.scan_iter(match=f"{storage_settings.key_prefix}catalogue:*"):
        cluster_client.delete(key)
    reader = CatalogueReader(async_cluster_client, storage_settings, CATALOGUE)
    assert await reader.count(CatalogueFilter()) == 0
    assert writer.catalogue.rebuild() == 500  # 400 battery and 100 speed histories
    assert await reader.count(CatalogueFilter()) == 400
    assert await reader.count(CatalogueFilter(sensor_type="speed")) == 100


def test_the_fleet_aggregate_combines_sensors_of_every_master(
    api: TestClient,
    cluster_client: redis.cluster.RedisCluster,
    storage_settings: StorageSettings,
) -> None:
    """Sensors spread over the slots (so over the three masters), read concurrently by the API
    and combined exactly: the same buckets as the reference over all their readings."""
    rng = random.Random(3)
    writer = ReadingWriter(cluster_client, storage_settings)
    fleet: dict[str, list[tuple[int, float]]] = {}
    readings = []
    for n in range(30):
        sensor = f"fa_{n:03d}"
        seconds = sorted({rng.randrange(0, 7200) for _ in range(25)} | {0})
        values = [round(rng.uniform(5, 95), 3) for _ in seconds]
        readings += [
            Reading(
                sensor_id=sensor,
                sensor_type="battery",
                timestamp=T0 + timedelta(seconds=s),
                value=v,
                unit="percentage",
            )
            for s, v in zip(seconds, values, strict=True)
        ]
        t0 = to_epoch_ms(T0)
        fleet[sensor] = [(t0 + 1000 * s, v) for s, v in zip(seconds, values, strict=True)]
    writer.store_many(readings)
    masters = {node.name for node in cluster_client.get_primaries()}  # type: ignore[no-untyped-call]
    holders = {
        cluster_client.get_node_from_key(writer.keys.history(sensor, "battery")).name  # type: ignore[no-untyped-call]
        for sensor in fleet
    }
    assert holders == masters
    window = {"start_time": "2024-02-01T12:00:00Z", "end_time": "2024-02-01T14:00:00Z"}
    params = {"sensor_type": "battery", "prefix": "fa_", "interval": "10m", **window}
    answer = api.get("/api/v1/aggregate", params=params).json()
    assert answer["sensors"] == 30
    start = to_epoch_ms(T0)
    expected = fleet_reference(fleet, start, start + 7_200_000, (10, "m"), "UTC", "none")
    for bucket in expected:
        bucket["start"] = format_epoch_ms(bucket["start"])  # type: ignore[arg-type]
        bucket["end"] = format_epoch_ms(bucket["end"])  # type: ignore[arg-type]
    assert answer["buckets"] == expected
    # Per sensor, paged over the catalogue: every sensor once, each with its own readings.
    seen: list[str] = []
    cursor = ""
    while True:
        page = api.get(
            "/api/v1/aggregate",
            params={**params, "group_by": "sensor", "limit": 7, "cursor": cursor, "agg": "count"},
        ).json()
        for item in page["items"]:
            assert sum(b["count"] for b in item["buckets"]) == len(fleet[item["sensor_id"]])
        seen += [item["sensor_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(fleet)

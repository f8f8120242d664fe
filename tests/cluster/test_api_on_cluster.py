"""The API on a three-master Redis Cluster (``REDIS_CLUSTER=true``): reads, live fan-out (readings
and the fleet's alarm events) and the rate limiter, for sensors whose keys live on every master."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.cluster
from fastapi.testclient import TestClient

from ev_api import Settings, create_app
from ev_schemas import AlarmRule, Reading, default_catalogue
from ev_storage import KeyLayout, ReadingWriter, RedisSettings, StorageSettings
from tests.cluster.redis_cluster import PrivateRedisCluster

pytestmark = pytest.mark.integration

CATALOGUE = default_catalogue()
T0 = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
SENSORS = [f"ev_{n:03d}" for n in range(9)]  # on all three masters (test_storage_on_cluster)


def reading(sensor_id: str, seconds: int, value: float, sensor_type: str = "battery") -> Reading:
    return Reading(
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        timestamp=T0 + timedelta(seconds=seconds),
        value=value,
        unit=CATALOGUE[sensor_type].unit,
    )


@pytest.fixture
def writer(
    cluster_client: redis.cluster.RedisCluster, storage_settings: StorageSettings
) -> ReadingWriter:
    return ReadingWriter(cluster_client, storage_settings)


@pytest.fixture
def make_api(
    redis_cluster: PrivateRedisCluster, cluster_prefix: str
) -> Iterator[Callable[..., TestClient]]:
    """The app (lifespan included) on the cluster; keyword arguments override settings."""
    host, port = redis_cluster.seed
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            redis = RedisSettings(
                host=host,
                port=port,
                cluster=True,
                key_prefix=cluster_prefix,
                socket_timeout_s=2.0,
                retries=2,
            )
            settings = Settings(redis=redis, api_keys=(), **overrides)
            return stack.enter_context(TestClient(create_app(settings)))

        yield make


def test_reads_of_sensors_on_every_master(
    make_api: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    api = make_api()
    writer.store_many(
        [
            reading(sensor, s, 50.0 + s, t)
            for sensor in SENSORS
            for s in range(3)
            for t in ("battery", "speed")
        ]
    )
    assert api.get("/health").json()["status"] == "ok"
    for sensor in SENSORS:
        everything = api.get(f"/api/v1/sensor/{sensor}").json()
        assert set(everything["readings"]) == {"battery", "speed"}
        latest = api.get(f"/api/v1/sensor/{sensor}/battery").json()
        assert latest == reading(sensor, 2, 52.0).model_dump(mode="json")
        history = api.get(
            f"/api/v1/sensor/{sensor}/history",
            params={"sensor_type": "speed", "limit": 2},
        ).json()
        assert [item["value"] for item in history["items"]] == [50.0, 51.0]
        rest = api.get(
            f"/api/v1/sensor/{sensor}/history",
            params={"sensor_type": "speed", "limit": 2, "cursor": history["next_cursor"]},
        ).json()
        assert ([item["value"] for item in rest["items"]], rest["next_cursor"]) == ([52.0], None)
        summary = api.get(f"/api/v1/sensor/{sensor}/summary").json()
        assert summary["types"]["battery"]["count"] == 3
    assert api.get("/api/v1/sensor/ev_none").status_code == 404


def test_live_readings_of_sensors_on_every_master(
    make_api: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    """The hub listens on one node; the write script's PUBLISH reaches it from every master."""
    api = make_api()
    with contextlib.ExitStack() as stack:
        # alarms=true for its "subscribed" marker: store only once every subscription is
        # confirmed (a reading published before would not reach the socket, by design).
        sockets = {
            sensor: stack.enter_context(
                api.websocket_connect(f"/api/v1/ws/sensor/{sensor}?alarms=true")
            )
            for sensor in SENSORS
        }
        for ws in sockets.values():
            assert ws.receive_json() == {"event": "subscribed"}
        writer.store_many([reading(sensor, 7, 70.0) for sensor in SENSORS])
        for sensor, ws in sockets.items():
            assert ws.receive_json() == reading(sensor, 7, 70.0).model_dump(mode="json")


def test_rate_limit_is_counted_on_the_cluster(make_api: Callable[..., TestClient]) -> None:
    """Two replicas on one cluster share each client's budget."""
    first, second = make_api(rate_limit_per_minute=3), make_api(rate_limit_per_minute=3)
    statuses = [api.get("/api/v1/sensor/ev_000").status_code for api in (first, second, first)]
    assert statuses == [404, 404, 404]
    refused = second.get("/api/v1/sensor/ev_000")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def test_fleet_alarm_socket_hears_sensors_on_every_master(
    make_api: Callable[..., TestClient],
    cluster_client: redis.cluster.RedisCluster,
    storage_settings: StorageSettings,
) -> None:
    """One PSUBSCRIBE on one node hears the alarm transitions published on all three masters."""
    keys = KeyLayout(storage_settings.key_prefix)
    masters = {cluster_client.get_node_from_key(keys.alarms(sensor)).name for sensor in SENSORS}
    assert len(masters) == 3
    hot = AlarmRule.model_validate({"id": "hot", "sensor_type": "temperature", "above": 100})
    writer = ReadingWriter(cluster_client, storage_settings, alarm_rules=[hot])
    api = make_api()
    with api.websocket_connect("/api/v1/ws/alarms?rule=hot") as ws:
        assert ws.receive_json() == {"event": "subscribed"}
        writer.store_many([reading(sensor, 1, 120.0, "temperature") for sensor in SENSORS])
        events = [ws.receive_json() for _ in SENSORS]
    assert sorted(event["alarm"]["sensor_id"] for event in events) == SENSORS
    assert {event["kind"] for event in events} == {"raised"}
    first = events[0]["alarm"]
    assert api.get(f"/api/v1/sensor/{first['sensor_id']}/alarms").json()["items"] == [first]

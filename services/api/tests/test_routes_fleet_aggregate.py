"""GET /api/v1/aggregate, the fleet-wide aggregate, against the real Redis: the combined series
against the reference over every selected sensor's readings, the per-sensor pages, the bounds,
each 422, auth and the rate limit."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from _api_helpers import T0, reading
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ev_api.routes import fleet_aggregate as route
from ev_api.routes.aggregate import DEFAULT_MAX_POINTS
from ev_schemas import MAX_BUCKETS, FleetAggregate, FleetAggregatePage, format_epoch_ms
from ev_schemas.testing import fleet_reference
from ev_storage import ReadingWriter

pytestmark = pytest.mark.integration

URL = "/api/v1/aggregate"
T0_MS = int(T0.timestamp() * 1000)
HOUR = 3_600_000
WINDOW = {"start_time": "2024-02-01T11:00:00Z", "end_time": "2024-02-01T15:00:00Z"}
Fleet = dict[str, list[tuple[int, float]]]


def get(client: TestClient, **params: Any) -> Any:
    response = client.get(URL, params={"sensor_type": "speed", **WINDOW, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def expected_buckets(
    fleet: Fleet, start_ms: int, end_ms: int, interval: str, zone: str = "UTC", fill: str = "none"
) -> list[dict[str, Any]]:
    """The reference over every sensor's readings, with times as the API writes them."""
    count, unit = int(interval[:-1]), interval[-1]
    buckets = fleet_reference(fleet, start_ms, end_ms, (count, unit), zone, fill)
    for bucket in buckets:
        bucket["start"] = format_epoch_ms(bucket["start"])  # type: ignore[arg-type]
        bucket["end"] = format_epoch_ms(bucket["end"])  # type: ignore[arg-type]
    return buckets


@pytest.fixture
def fleet(writer: ReadingWriter) -> Fleet:
    """bus_0 .. bus_5 report speeds over three hours from T0 (often at the same milliseconds);
    ev_0 and ev_1 speeds too, ev_2 a battery only. Stored in random order, some twice."""
    rng = random.Random(11)
    stored: Fleet = {}
    readings = []
    for sensor in [f"bus_{n}" for n in range(6)] + ["ev_0", "ev_1"]:
        times = sorted({rng.randrange(0, 3 * HOUR, 500) for _ in range(30)} | {0, HOUR + 500})
        stored[sensor] = [(T0_MS + ms, round(rng.uniform(0, 120), 2)) for ms in times]
        readings += [reading("speed", (ms - T0_MS) / 1000, v, sensor) for ms, v in stored[sensor]]
    readings.append(reading("battery", 0, 80.0, "ev_2"))
    readings += readings[:20]  # redeliveries: counted once
    rng.shuffle(readings)
    writer.store_many(readings)
    return stored


def buses(fleet: Fleet) -> Fleet:
    return {sensor: readings for sensor, readings in fleet.items() if sensor.startswith("bus_")}


def test_one_series_combines_every_selected_sensor(client: TestClient, fleet: Fleet) -> None:
    answer = get(client, prefix="bus_", interval="1h")
    assert {k: v for k, v in answer.items() if k != "buckets"} == {
        "sensor_type": "speed",
        "unit": "km/h",
        "interval": "1h",
        "tz": "UTC",
        "fill": "none",
        "aggregators": ["avg", "min", "max", "count", "sum", "first", "last"],
        "start_time": "2024-02-01T11:00:00Z",
        "end_time": "2024-02-01T15:00:00Z",
        "sensors": 6,
    }
    start, end = T0_MS - HOUR, T0_MS + 3 * HOUR
    assert answer["buckets"] == expected_buckets(buses(fleet), start, end, "1h")
    # Every bus reports at T0 (the first bucket's start): first is bus_0's, the smallest id.
    assert answer["buckets"][0]["start"] == "2024-02-01T12:00:00Z"
    assert answer["buckets"][0]["first"] == fleet["bus_0"][0][1]
    FleetAggregate.model_validate(answer)
    # No prefix: every sensor with speed readings (ev_2 has none), in other intervals and zones.
    for interval, zone, fill in (("7m", "UTC", "null"), ("1d", "Asia/Kathmandu", "previous")):
        every = get(client, interval=interval, tz=zone, fill=fill)
        assert every["sensors"] == 8
        assert every["buckets"] == expected_buckets(fleet, start, end, interval, zone, fill)


def test_catalogue_filters_select_the_sensors(client: TestClient, fleet: Fleet) -> None:
    last_seen = {sensor: max(ms for ms, _ in readings) for sensor, readings in fleet.items()}
    cut = sorted(last_seen.values())[4]
    recent = {s: r for s, r in fleet.items() if last_seen[s] >= cut}
    answer = get(client, seen_after=format_epoch_ms(cut), interval="30m", agg="count,sum")
    assert answer["sensors"] == len(recent) == 4
    assert answer["buckets"] == [
        {k: b[k] for k in ("start", "end", "count", "sum")}
        for b in expected_buckets(recent, T0_MS - HOUR, T0_MS + 3 * HOUR, "30m")
    ]
    older = get(client, seen_before=format_epoch_ms(cut - 1), interval="30m", agg="count")
    assert older["sensors"] == 4
    none = get(client, prefix="tram_", interval="1h", fill="null", agg="count,avg")
    assert none["sensors"] == 0
    assert [(b["count"], b["avg"]) for b in none["buckets"]] == [(0, None)] * 4
    assert get(client, sensor_type="battery", interval="1h")["sensors"] == 1  # ev_2


def test_group_by_sensor_pages_each_sensors_own_series(client: TestClient, fleet: Fleet) -> None:
    params = {"group_by": "sensor", "interval": "1h", "agg": "count,first,last"}
    seen: list[str] = []
    cursor = ""
    while True:
        page = get(client, limit=3, cursor=cursor, **params)
        FleetAggregatePage.model_validate(page)
        assert len(page["items"]) <= 3
        for item in page["items"]:
            alone = client.get(
                f"/api/v1/sensor/{item['sensor_id']}/aggregate",
                params={"sensor_type": "speed", **WINDOW, "interval": "1h", "agg": params["agg"]},
            )
            assert item["buckets"] == alone.json()["buckets"]
        seen += [item["sensor_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(fleet)  # catalogue order; ev_2 has no speed readings
    assert [i["sensor_id"] for i in get(client, **params)["items"]] == seen[:8]  # default 10
    # A cursor of /sensors (sort=id) continues here, and the other way round.
    listed = client.get("/api/v1/sensors", params={"sensor_type": "speed", "limit": 2}).json()
    after = get(client, cursor=listed["next_cursor"], limit=2, **params)
    assert [item["sensor_id"] for item in after["items"]] == seen[2:4]
    onward = client.get(
        "/api/v1/sensors", params={"sensor_type": "speed", "cursor": after["next_cursor"]}
    ).json()
    assert [item["sensor_id"] for item in onward["items"]] == seen[4:]


def test_more_sensors_than_a_combined_series_takes_is_a_422_saying_how_many(
    client: TestClient, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(route, "MAX_COMBINED_SENSORS", 5)
    response = client.get(URL, params={"sensor_type": "speed", **WINDOW})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "prefix"]
    assert error["msg"] == (
        "the filter selects 8 sensors, more than the 5 one combined series may take: narrow it "
        "(a longer prefix, seen_after or seen_before) or page through them with group_by=sensor"
    )
    assert client.get(URL, params={"sensor_type": "speed", "prefix": "bus_"}).status_code == 422
    assert get(client, prefix="ev_")["sensors"] == 2
    assert len(get(client, group_by="sensor", limit=100)["items"]) == 8  # pages are not bound


def test_buckets_times_sensors_is_bounded(
    client: TestClient, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(route, "MAX_SENSOR_BUCKETS", 100)
    assert len(get(client, prefix="bus_", interval="15m")["buckets"]) == 12  # 16 x 6 = 96
    for params, field in (({"interval": "10m"}, "interval"), ({"max_points": 30}, "max_points")):
        response = client.get(URL, params={"sensor_type": "speed", **WINDOW, **params})
        assert response.status_code == 422, response.text
        (error,) = response.json()["detail"]
        assert error["loc"] == ["query", field]
        assert error["msg"].startswith("24 buckets x 8 sensors is more than 100 per request: ")
        assert "at most 12 buckets for 8 sensors (max_points=12, " in error["msg"]


def test_neither_the_default_nor_any_page_exceeds_the_bound() -> None:
    assert DEFAULT_MAX_POINTS * route.MAX_COMBINED_SENSORS <= route.MAX_SENSOR_BUCKETS
    assert MAX_BUCKETS * route.MAX_GROUP_LIMIT <= route.MAX_SENSOR_BUCKETS


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"sensor_type": None}, "sensor_type", "Field required"),
        ({"sensor_type": "warp"}, "sensor_type", "unknown sensor type(s) 'warp'; configured:"),
        ({"sensor_type": "speed,battery"}, "sensor_type", "aggregate one sensor type at a time"),
        ({"prefix": "bus/"}, "prefix", "must be at most 64 letters, digits, '_', '-' or '.'"),
        ({"seen_after": "today"}, "seen_after", "Value error, must be an RFC 3339"),
        (
            {"seen_after": "2024-02-02T00:00:00Z", "seen_before": "2024-02-01T00:00:00Z"},
            "seen_after",
            "seen_after is after seen_before",
        ),
        ({"interval": "5"}, "interval", "unknown interval '5'"),
        ({"interval": "1s"}, "interval", "interval too small for the range: 1s gives 14400"),
        ({"agg": "median"}, "agg", "unknown aggregator(s) 'median'"),
        ({"fill": "zero"}, "fill", "unknown fill 'zero'"),
        ({"tz": "Mars/Olympus", "interval": "1d"}, "tz", "unknown time zone 'Mars/Olympus'"),
        ({"max_points": 0}, "max_points", "Input should be greater than or equal to 1"),
        ({"interval": "1h", "max_points": 9}, "max_points", "give interval or max_points, not"),
        ({"end_time": "2024-01-01T00:00:00Z"}, "start_time", "start_time is after end_time"),
        ({"group_by": "vehicle"}, "group_by", "Input should be 'sensor'"),
        ({"limit": 5}, "limit", "limit pages group_by=sensor only"),
        ({"cursor": "aTpidXNfMQ"}, "cursor", "cursor pages group_by=sensor only"),
        ({"group_by": "sensor", "limit": 0}, "limit", "Input should be greater than or equal"),
        (
            {"group_by": "sensor", "limit": 101},
            "limit",
            "Input should be less than or equal to 100",
        ),
        ({"group_by": "sensor", "cursor": "!!"}, "cursor", "malformed cursor '!!'"),
        ({"group_by": "sensor", "cursor": "bm9wZQ"}, "cursor", "malformed cursor 'bm9wZQ': not a"),
        ({"sensor": "bus_0"}, "sensor", "Unknown query parameter"),
    ],
)
def test_each_bad_parameter_is_a_422_naming_it(
    client: TestClient, params: dict[str, Any], field: str, message: str
) -> None:
    query = {k: v for k, v in {"sensor_type": "speed", **WINDOW, **params}.items() if v is not None}
    response = client.get(URL, params=query)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert error["msg"].startswith(message), error["msg"]


def test_a_last_seen_cursor_is_refused_with_the_reason(client: TestClient, fleet: Fleet) -> None:
    listed = client.get("/api/v1/sensors", params={"sort": "last_seen", "limit": 1}).json()
    response = client.get(
        URL, params={"sensor_type": "speed", "group_by": "sensor", "cursor": listed["next_cursor"]}
    )
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert message.endswith("continues a page sorted by last_seen, not by id")


def test_needs_a_key_and_counts_against_the_rate_limit(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_keys="alpha", rate_limit_per_minute=2)
    params = {"sensor_type": "speed", **WINDOW}
    assert client.get(URL, params=params).status_code == 401
    key = {"X-API-Key": "alpha"}
    assert client.get(URL, params=params, headers=key).status_code == 200
    grouped = client.get(URL, params={**params, "group_by": "sensor"}, headers=key)
    assert grouped.status_code == 200
    limited = client.get(URL, params=params, headers=key)
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


def test_storage_unavailable_is_503(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.5)
    for extra in ({}, {"group_by": "sensor"}):
        response = client.get(URL, params={"sensor_type": "speed", **WINDOW, **extra})
        assert (response.status_code, response.json()) == (503, {"detail": "storage unavailable"})


def test_openapi_documents_every_parameter_and_answer(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"][URL]["get"]
    names = {p["name"]: p for p in operation["parameters"]}
    assert set(names) == {
        "sensor_type", "start_time", "end_time", "interval", "max_points", "agg", "fill", "tz",
        "prefix", "seen_after", "seen_before", "group_by", "limit", "cursor",
    }  # fmt: skip
    assert names["sensor_type"]["required"] is True
    for parameter in names.values():
        assert parameter.get("examples") or parameter["schema"].get("examples"), parameter
    assert operation["summary"] == (
        "One sensor type aggregated over the sensors a catalogue filter selects"
    )
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert ok == [
        {"$ref": "#/components/schemas/FleetAggregate"},
        {"$ref": "#/components/schemas/FleetAggregatePage"},
    ]
    for model in ("FleetAggregate", "FleetAggregatePage"):
        assert document["components"]["schemas"][model]["examples"]
    assert set(operation["responses"]) == {"200", "401", "422", "503"}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(
        st.dictionaries(
            st.integers(0, 30 * HOUR) | st.sampled_from([0, 1, HOUR]),
            st.floats(0, 300),
            max_size=30,
        ),
        max_size=5,
    ),
    seed=st.integers(0, 2**32),
    start=st.integers(-2 * HOUR, 30 * HOUR),
    length=st.integers(0, 40 * HOUR),
    interval=st.sampled_from(["1m", "5m", "1h", "1d"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    fill=st.sampled_from(["none", "null", "previous"]),
)
def test_the_combined_series_is_the_aggregate_of_every_sensors_readings(
    client: TestClient,
    writer: ReadingWriter,
    data: list[dict[int, float]],
    seed: int,
    start: int,
    length: int,
    interval: str,
    zone: str,
    fill: str,
) -> None:
    prefix = f"p{uuid.uuid4().hex[:10]}_"
    fleet = {
        f"{prefix}{n}": [(T0_MS + offset, value) for offset, value in readings.items()]
        for n, readings in enumerate(data)
    }
    stored = [
        reading("speed", (ms - T0_MS) / 1000, value, sensor)
        for sensor, readings in fleet.items()
        for ms, value in readings
    ]
    random.Random(seed).shuffle(stored)
    writer.store_many(stored)
    start_ms = T0_MS + start
    answer = get(
        client,
        prefix=prefix,
        start_time=format_epoch_ms(start_ms),
        end_time=format_epoch_ms(start_ms + length),
        interval=interval,
        tz=zone,
        fill=fill,
    )
    assert answer["sensors"] == sum(1 for readings in fleet.values() if readings)
    expected = expected_buckets(fleet, start_ms, start_ms + length, interval, zone, fill)
    assert answer["buckets"] == expected

"""GET /sensor/{id}/alarms and POST /alarms/{alarm_id}/ack against the real Redis, with the
episodes made by the write script from stored readings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis
from _api_helpers import reading
from fastapi.testclient import TestClient

from ev_schemas import SensorAlarms
from ev_storage import ReadingWriter, StorageSettings

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Rule:
    """An alarm rule as the write script takes it (the fields of ev_schemas' rule model)."""

    id: str
    sensor_type: str
    above: float | None = None
    below: float | None = None
    for_ms: int | None = None
    readings: int | None = None
    severity: str = "warning"
    sensor_prefix: str = ""

    @property
    def effective_clear_below(self) -> float | None:
        return self.above

    @property
    def effective_clear_above(self) -> float | None:
        return self.below


RULES = [
    Rule("motor-hot", "temperature", above=120.0, for_ms=60_000, severity="critical"),
    Rule("battery-low", "battery", below=10.0),
]


@pytest.fixture
def alarmed(redis_client: redis.Redis, key_prefix: str) -> ReadingWriter:
    """ev_001: a motor episode 0:30-3:00 (cleared) and a low battery since 4:00 (active)."""
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), RULES)
    for seconds, value in [(0, 80), (30, 125), (60, 130), (90, 128), (150, 121), (180, 90)]:
        writer.store_many([reading("temperature", seconds, value)])
    writer.store_many([reading("battery", 240, 8.0)])
    return writer


@pytest.mark.usefixtures("alarmed")
def test_a_sensors_alarms_newest_first_with_both_times(client: TestClient) -> None:
    response = client.get("/api/v1/sensor/ev_001/alarms")
    assert response.status_code == 200, response.text
    body = SensorAlarms.model_validate_json(response.content)
    assert [(a.rule_id, a.state, a.severity) for a in body.items] == [
        ("battery-low", "active", "warning"),
        ("motor-hot", "cleared", "critical"),
    ]
    motor = response.json()["items"][1]
    assert motor["alarm_id"] == "ev_001~temperature~motor-hot~1706788830000"
    assert (motor["began"], motor["raised"], motor["cleared"]) == (
        "2024-02-01T12:00:30Z",
        "2024-02-01T12:01:30Z",
        "2024-02-01T12:03:00Z",
    )
    assert motor["raised_at"] > "2026"  # processing time: when it was stored, not measured
    assert (motor["acked_by"], motor["acked_at"]) == (None, None)


@pytest.mark.usefixtures("alarmed")
@pytest.mark.parametrize(
    ("query", "rules"),
    [
        ("state=active", ["battery-low"]),
        ("state=cleared", ["motor-hot"]),
        ("severity=critical", ["motor-hot"]),
        ("sensor_type=battery", ["battery-low"]),
        ("rule=motor-hot&state=active", []),
    ],
)
def test_filters(client: TestClient, query: str, rules: list[str]) -> None:
    items = client.get(f"/api/v1/sensor/ev_001/alarms?{query}").json()["items"]
    assert [item["rule_id"] for item in items] == rules


def test_a_sensor_without_alarms_has_an_empty_list(client: TestClient) -> None:
    assert client.get("/api/v1/sensor/ev_999/alarms").json() == {"sensor_id": "ev_999", "items": []}


@pytest.mark.parametrize(
    ("query", "field"),
    [("state=open", "state"), ("severity=high", "severity"), ("sort=x", "sort")],
)
def test_bad_parameters_are_422_naming_them(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"/api/v1/sensor/ev_001/alarms?{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field


@pytest.mark.usefixtures("alarmed")
def test_acknowledging_keeps_the_first_and_the_alarm_active(client: TestClient) -> None:
    alarm_id = "ev_001~battery~battery-low~1706789040000"
    first = client.post(f"/api/v1/alarms/{alarm_id}/ack", json={"by": "ops-oncall"})
    assert first.status_code == 200, first.text
    assert (first.json()["acked_by"], first.json()["state"]) == ("ops-oncall", "active")
    again = client.post(f"/api/v1/alarms/{alarm_id}/ack", json={"by": "someone-else"})
    assert again.json()["acked_by"] == "ops-oncall"
    assert again.json()["acked_at"] == first.json()["acked_at"]
    listed = client.get("/api/v1/sensor/ev_001/alarms?state=active").json()["items"][0]
    assert listed["acked_by"] == "ops-oncall"


@pytest.mark.usefixtures("alarmed")
@pytest.mark.parametrize(
    ("alarm_id", "body", "code"),
    [
        ("ev_001~battery~battery-low~1", {"by": "me"}, 404),
        ("ev_001~battery~battery-low", {"by": "me"}, 422),
        ("ev_001~battery~battery-low~1706789040000", {}, 422),
        ("ev_001~battery~battery-low~1706789040000", {"by": ""}, 422),
        ("ev_001~battery~battery-low~1706789040000", {"by": "me", "at": 1}, 422),
    ],
)
def test_bad_acknowledgements(
    client: TestClient, alarm_id: str, body: dict[str, object], code: int
) -> None:
    response = client.post(f"/api/v1/alarms/{alarm_id}/ack", json=body)
    assert response.status_code == code, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/sensor/ev_001/alarms"),
        ("GET", "/api/v1/alarms"),
        ("POST", "/api/v1/alarms/ev_001~battery~battery-low~1/ack"),
    ],
)
def test_keys_and_rate_limit_apply(
    make_client: Callable[..., TestClient], method: str, path: str
) -> None:
    secured = make_client(api_keys="alpha", rate_limit_per_minute=2)
    body = {"by": "me"}
    assert secured.request(method, path, json=body).status_code == 401
    key = {"X-API-Key": "alpha"}
    assert secured.request(method, path, json=body, headers=key).status_code in (200, 404)
    assert secured.request(method, path, json=body, headers=key).status_code in (200, 404)
    assert secured.request(method, path, json=body, headers=key).status_code == 429


def test_openapi_documents_the_routes_with_examples(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    listing = paths["/api/v1/sensor/{sensor_id}/alarms"]["get"]
    for parameter in listing["parameters"]:
        assert parameter.get("examples") or parameter["schema"].get("examples"), parameter
        assert parameter.get("description"), parameter
    fleet = paths["/api/v1/alarms"]["get"]
    for parameter in fleet["parameters"]:
        assert parameter.get("description"), parameter
        if parameter["name"] != "cursor":
            assert parameter.get("examples") or parameter["schema"].get("examples"), parameter
    ack = paths["/api/v1/alarms/{alarm_id}/ack"]["post"]
    assert set(ack["responses"]) == {"200", "401", "404", "422", "503"}
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Alarm"]["examples"]
    assert schemas["AlarmAck"]["examples"]


@pytest.fixture
def fleet_alarms(redis_client: redis.Redis, key_prefix: str) -> dict[str, list[str]]:
    """bus_00 .. bus_24 and car_0 .. car_4: each a cleared motor alarm (began at n s) and an
    active one (began at 1000 + n s); the alarm ids by state."""
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), RULES[:1])
    sensors = [f"bus_{n:02d}" for n in range(25)] + [f"car_{n}" for n in range(5)]
    for n, sensor in enumerate(sensors):
        temps = [(n, 130), (n + 60, 130), (n + 120, 80), (1000 + n, 130), (1060 + n, 130)]
        writer.store_many([reading("temperature", s, v, sensor) for s, v in temps])
    began = 1706788800000
    return {
        "cleared": [f"{s}~temperature~motor-hot~{began + n * 1000}" for n, s in enumerate(sensors)],
        "active": [
            f"{s}~temperature~motor-hot~{began + (1000 + n) * 1000}" for n, s in enumerate(sensors)
        ],
    }


def _pages(client: TestClient, query: str) -> list[str]:
    ids, cursor = [], None
    while True:
        url = f"/api/v1/alarms?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [item["alarm_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def test_the_fleets_alarms_newest_first_in_pages(
    client: TestClient, fleet_alarms: dict[str, list[str]]
) -> None:
    every = fleet_alarms["active"][::-1] + fleet_alarms["cleared"][::-1]
    assert _pages(client, "limit=7") == every
    assert _pages(client, "limit=1000") == every
    assert _pages(client, "state=active&limit=4") == fleet_alarms["active"][::-1]
    assert _pages(client, "state=cleared&limit=9") == fleet_alarms["cleared"][::-1]
    cars = [alarm for alarm in every if alarm.startswith("car_")]
    assert _pages(client, "prefix=car_&limit=3") == cars
    assert _pages(client, "severity=critical&rule=motor-hot&sensor_type=temperature") == every
    assert _pages(client, "severity=info") == []
    assert _pages(client, "sensor_type=battery") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("state=open", "state"),
        ("prefix=a%20b", "prefix"),
        ("cursor=!!", "cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
    ],
)
def test_fleet_listing_parameters_are_checked(client: TestClient, query: str, field: str) -> None:
    response = client.get(f"/api/v1/alarms?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field


@pytest.mark.usefixtures("fleet_alarms")
def test_active_alarms_are_gauged_by_severity_and_rule(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'ev_api_alarms_active{rule="motor-hot",severity="critical"} 30.0' in text


@pytest.mark.usefixtures("alarmed")
def test_a_cleared_alarm_is_not_gauged(client: TestClient) -> None:
    lines = [line for line in client.get("/metrics").text.splitlines() if "alarms_active{" in line]
    assert lines == ['ev_api_alarms_active{rule="battery-low",severity="warning"} 1.0']

"""The fleet catalogue over HTTP against the real Redis, seeded as the consumer would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _api_helpers import reading
from fastapi.testclient import TestClient

from ev_schemas import FleetCount, FleetPage, Reading
from ev_storage import ReadingWriter

BASE = "/api/v1/sensors"


@pytest.fixture
def fleet(writer: ReadingWriter) -> None:
    """ev_000 .. ev_011 and bus_0 .. bus_2; ev_<n> last seen at n seconds, types vary."""
    readings = []
    for n in range(12):
        readings.append(reading("battery", n, 50.0, f"ev_{n:03d}"))
        if n % 2:
            readings.append(reading("speed", n - 0.5, 10.0, f"ev_{n:03d}"))
    readings += [reading("temperature", 100 + n, 20.0, f"bus_{n}") for n in range(3)]
    writer.store_many(readings)


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["sensor_id"] for item in response.json()["items"]]


def _all_pages(client: TestClient, query: str) -> list[str]:
    ids: list[str] = []
    cursor = ""
    while True:
        response = client.get(f"{BASE}?{query}&cursor={cursor}")
        ids += _ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids


@pytest.mark.usefixtures("fleet")
def test_list_items_carry_types_and_their_newest_times(client: TestClient) -> None:
    response = client.get(f"{BASE}?prefix=ev_00&limit=2")
    assert response.headers["content-type"] == "application/json"
    body = FleetPage.model_validate_json(response.content)
    assert response.json() == {
        "items": [
            {
                "sensor_id": "ev_000",
                "last_seen": "2024-02-01T12:00:00Z",
                "types": {"battery": "2024-02-01T12:00:00Z"},
            },
            {
                "sensor_id": "ev_001",
                "last_seen": "2024-02-01T12:00:01Z",
                "types": {"battery": "2024-02-01T12:00:01Z", "speed": "2024-02-01T12:00:00.500Z"},
            },
        ],
        "next_cursor": body.next_cursor,
    }
    assert body.next_cursor is not None


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [*(f"bus_{n}" for n in range(3)), *(f"ev_{n:03d}" for n in range(12))]),
        ("prefix=bus", ["bus_0", "bus_1", "bus_2"]),
        ("prefix=ev_01", ["ev_010", "ev_011"]),
        ("sensor_type=speed", [f"ev_{n:03d}" for n in range(1, 12, 2)]),
        (
            "seen_after=2024-02-01T12:00:09Z",
            ["bus_0", "bus_1", "bus_2", "ev_009", "ev_010", "ev_011"],
        ),
        (
            "seen_after=2024-02-01T12:00:02Z&seen_before=2024-02-01T12:00:04Z&sensor_type=battery",
            ["ev_002", "ev_003", "ev_004"],
        ),
        ("seen_before=2024-02-01T13:00:00%2B01:00", ["ev_000"]),
        ("prefix=nobody", []),
    ],
)
def test_filters_paging_and_count_agree(
    client: TestClient, query: str, expected: list[str]
) -> None:
    for limit in (1, 4, 100):
        assert _all_pages(client, f"{query}&limit={limit}") == expected
    count = client.get(f"{BASE}/count?{query}")
    assert count.status_code == 200
    assert FleetCount.model_validate_json(count.content).count == len(expected)


@pytest.mark.usefixtures("fleet")
def test_sort_by_last_seen_is_newest_first(client: TestClient) -> None:
    expected = ["bus_2", "bus_1", "bus_0", *(f"ev_{n:03d}" for n in range(11, -1, -1))]
    assert _all_pages(client, "sort=last_seen&limit=4") == expected
    assert _all_pages(client, "sort=last_seen&prefix=ev_00&limit=3") == [
        f"ev_{n:03d}" for n in range(9, -1, -1)
    ]


@pytest.mark.usefixtures("fleet")
def test_include_latest_inlines_each_types_latest_reading(client: TestClient) -> None:
    response = client.get(f"{BASE}?prefix=ev_001&include=latest")
    [item] = response.json()["items"]
    assert {t: Reading.model_validate(r) for t, r in item["latest"].items()} == {
        "battery": reading("battery", 1, 50.0, "ev_001"),
        "speed": reading("speed", 0.5, 10.0, "ev_001"),
    }
    plain = client.get(f"{BASE}?prefix=ev_001").json()["items"][0]
    assert "latest" not in plain


def test_an_empty_fleet(client: TestClient) -> None:
    assert client.get(BASE).json() == {"items": [], "next_cursor": None}
    assert client.get(f"{BASE}/count").json() == {"count": 0}


@pytest.mark.parametrize(
    ("path", "query", "field", "message"),
    [
        (BASE, "limit=0", "limit", "greater than or equal to 1"),
        (BASE, "limit=1001", "limit", "less than or equal to 1000"),
        (BASE, "limit=ten", "limit", "valid integer"),
        (BASE, "sort=size", "sort", "Input should be 'id' or 'last_seen'"),
        (BASE, "cursor=%21%21", "cursor", "malformed cursor"),
        (BASE, "include=everything", "include", "unknown include 'everything'; possible: latest"),
        (BASE, "prefix=ev%20", "prefix", "at most 64 letters, digits"),
        (BASE, f"prefix={'x' * 65}", "prefix", "at most 64 letters, digits"),
        (BASE, "sensor_type=sonar", "sensor_type", "unknown sensor type 'sonar'; configured:"),
        (BASE, "seen_after=yesterday", "seen_after", "RFC 3339 date-time with a time zone"),
        (BASE, "seen_before=2024-02-01T12:00:00", "seen_before", "RFC 3339 date-time"),
        (
            BASE,
            "seen_after=2024-02-02T00:00:00Z&seen_before=2024-02-01T00:00:00Z",
            "seen_after",
            "seen_after is after seen_before",
        ),
        (BASE, "limt=5", "limt", "Unknown query parameter"),
        (f"{BASE}/count", "sensor_type=sonar", "sensor_type", "unknown sensor type 'sonar'"),
        (f"{BASE}/count", "seen_after=1706788800", "seen_after", "RFC 3339"),
        (f"{BASE}/count", "prefix=a/b", "prefix", "at most 64 letters"),
        (f"{BASE}/count", "limit=5", "limit", "Unknown query parameter"),
    ],
)
def test_every_bad_parameter_is_a_422_naming_it(
    client: TestClient, path: str, query: str, field: str, message: str
) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert message in error["msg"]


@pytest.mark.usefixtures("fleet")
def test_a_cursor_of_the_other_order_is_refused(client: TestClient) -> None:
    cursor = client.get(f"{BASE}?limit=1").json()["next_cursor"]
    response = client.get(f"{BASE}?sort=last_seen&cursor={cursor}")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "cursor"]
    assert "sorted by id, not by last_seen" in error["msg"]


@pytest.mark.parametrize("path", [BASE, f"{BASE}/count"])
def test_keys_and_rate_limit_apply(make_client: Callable[..., TestClient], path: str) -> None:
    secured = make_client(api_keys="alpha", rate_limit_per_minute=2)
    assert secured.get(path).status_code == 401
    assert secured.get(path, headers={"X-API-Key": "beta"}).status_code == 401
    assert secured.get(path, headers={"X-API-Key": "alpha"}).status_code == 200
    assert secured.get(path, headers={"X-API-Key": "alpha"}).status_code == 200
    refused = secured.get(path, headers={"X-API-Key": "alpha"})
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers


def test_openapi_documents_every_parameter_with_an_example(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, names in (
        (BASE, {"prefix", "sensor_type", "seen_after", "seen_before", "sort", "limit", "cursor",
                "include"}),
        (f"{BASE}/count", {"prefix", "sensor_type", "seen_after", "seen_before"}),
    ):  # fmt: skip
        operation = paths[path]["get"]
        assert {p["name"] for p in operation["parameters"]} == names
        for parameter in operation["parameters"]:
            assert parameter.get("examples") or parameter["schema"].get("examples"), parameter
            assert parameter.get("description"), parameter
        assert set(operation["responses"]) == {"200", "401", "422", "503"}

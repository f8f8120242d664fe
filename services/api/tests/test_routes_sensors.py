"""REST reads of one sensor against the real Redis, seeded as the consumer would."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from _api_helpers import reading, rfc3339_texts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from ev_schemas import HistoryPage, Reading, SensorReadings, SensorSummary
from ev_storage import ReadingWriter

BASE = "/api/v1/sensor"


def _detail_locs(response: Any) -> list[list[str]]:
    return [error["loc"] for error in response.json()["detail"]]


# --- latest of every type -------------------------------------------------------------------


def test_latest_readings_of_every_type(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many(
        [reading("battery", 0, 80), reading("battery", 10, 79), reading("speed", 5, 42.5)]
    )
    response = client.get(f"{BASE}/ev_001")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = SensorReadings.model_validate_json(response.content)
    assert body.sensor_id == "ev_001"
    assert body.readings == {
        "battery": reading("battery", 10, 79),
        "speed": reading("speed", 5, 42.5),
    }


def test_latest_readings_are_the_stored_bytes(
    client: TestClient, writer: ReadingWriter, redis_client: Any, key_prefix: str
) -> None:
    writer.store_many([reading("temperature", 0, 21.5)])
    stored = redis_client.get(f"{key_prefix}sensor:{{ev_001}}:temperature:latest")
    response = client.get(f"{BASE}/ev_001")
    assert response.content == b'{"sensor_id":"ev_001","readings":{"temperature":%s}}' % stored
    json.loads(response.content)  # and valid JSON


def test_latest_readings_404_without_data(client: TestClient) -> None:
    response = client.get(f"{BASE}/ev_404")
    assert response.status_code == 404
    assert response.json() == {"detail": "no data for sensor 'ev_404'"}


@pytest.mark.parametrize("bad_id", ["bad!id", "x" * 65, "ev 001"])
def test_sensor_id_validated_with_a_readable_detail(client: TestClient, bad_id: str) -> None:
    response = client.get(f"{BASE}/{bad_id}")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["path", "sensor_id"]
    assert "1-64 characters of letters, digits" in error["msg"]


# --- latest of one type ---------------------------------------------------------------------


def test_latest_reading_of_one_type(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery", 10, 79), reading("battery", 0, 80)])  # out of order
    response = client.get(f"{BASE}/ev_001/battery")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert Reading.model_validate_json(response.content) == reading("battery", 10, 79)
    assert response.json()["timestamp"] == "2024-02-01T12:00:10Z"


def test_latest_reading_404_when_none(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery")])
    response = client.get(f"{BASE}/ev_001/speed")
    assert response.status_code == 404
    assert response.json() == {"detail": "no speed reading for sensor 'ev_001'"}


def test_unknown_type_404_names_the_configured_types(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(sensor_types="battery,speed")
    response = client.get(f"{BASE}/ev_001/temperature")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "unknown sensor type 'temperature'; configured: battery, speed"
    }


# --- history ------------------------------------------------------------------------------


def test_history_ascending_with_inclusive_bounds(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery", s, 50 + s) for s in (30, 0, 10, 20)])
    response = client.get(
        f"{BASE}/ev_001/history",
        params={"start_time": "2024-02-01T12:00:10Z", "end_time": "2024-02-01T12:00:20Z"},
    )
    assert response.status_code == 200
    page = HistoryPage.model_validate_json(response.content)
    assert page.sensor_id == "ev_001"
    assert page.items == [reading("battery", 10, 60), reading("battery", 20, 70)]
    assert page.next_cursor is None


def test_history_defaults_cover_everything_until_now(
    client: TestClient, writer: ReadingWriter
) -> None:
    writer.store_many([reading("battery", 0), reading("speed", 1)])
    response = client.get(f"{BASE}/ev_001/history")
    assert response.status_code == 200
    assert [item["sensor_type"] for item in response.json()["items"]] == ["battery", "speed"]


def test_history_offsets_are_converted_to_utc(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery", 0), reading("battery", 60)])
    # 13:01+01:00 is 12:01Z; the '+' arrives encoded (%2B) or, from careless clients, as a space.
    for start in ("2024-02-01T13:01:00+01:00", "2024-02-01T13:01:00 01:00"):
        response = client.get(f"{BASE}/ev_001/history?start_time={start.replace(' ', '%20')}")
        assert response.status_code == 200, response.text
        assert [item["timestamp"] for item in response.json()["items"]] == ["2024-02-01T12:01:00Z"]


def test_history_type_filter_repeated_or_comma_separated(
    client: TestClient, writer: ReadingWriter
) -> None:
    writer.store_many([reading("battery", 0), reading("speed", 1), reading("temperature", 2, 20)])
    for query in ("sensor_type=speed,temperature", "sensor_type=speed&sensor_type=temperature"):
        response = client.get(f"{BASE}/ev_001/history?{query}")
        assert response.status_code == 200
        types = [item["sensor_type"] for item in response.json()["items"]]
        assert types == ["speed", "temperature"]


def test_history_pages_with_cursor_without_gaps_or_repeats(
    client: TestClient, writer: ReadingWriter
) -> None:
    stored = [reading(t, s, s % 90) for s in range(0, 25) for t in ("battery", "speed")]
    writer.store_many(stored)
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 7}
    pages = 0
    while True:
        response = client.get(f"{BASE}/ev_001/history", params=params)
        assert response.status_code == 200
        body = response.json()
        assert len(body["items"]) <= 7
        seen += body["items"]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == 8  # 50 items, 7 per page
    assert [Reading.model_validate(item) for item in seen] == sorted(
        stored, key=lambda r: (r.timestamp, r.sensor_type)
    )


def test_history_default_limit_from_settings(
    make_client: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    client = make_client(history_default_limit=3, history_max_limit=5)
    writer.store_many([reading("battery", s) for s in range(10)])
    body = client.get(f"{BASE}/ev_001/history").json()
    assert len(body["items"]) == 3
    assert body["next_cursor"] is not None
    assert len(client.get(f"{BASE}/ev_001/history?limit=5").json()["items"]) == 5
    response = client.get(f"{BASE}/ev_001/history?limit=6")
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "Input should be less than or equal to 5"


def test_history_of_a_sensor_without_data_is_an_empty_page(client: TestClient) -> None:
    response = client.get(f"{BASE}/ev_404/history")
    assert response.status_code == 200
    assert response.json() == {"sensor_id": "ev_404", "items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("start_time=yesterday", ["query", "start_time"]),
        ("end_time=2024-02-30T00:00:00Z", ["query", "end_time"]),
        ("start_time=1706788800", ["query", "start_time"]),
        ("start_time=2024-02-01", ["query", "start_time"]),
        ("limit=0", ["query", "limit"]),
        ("limit=many", ["query", "limit"]),
        ("limit=1001", ["query", "limit"]),
        ("sensor_type=battery,warp_drive", ["query", "sensor_type"]),
        ("sensor_type=,", ["query", "sensor_type"]),
        ("cursor=not-a-cursor", ["query", "cursor"]),
        ("cursor=" + "A" * 300, ["query", "cursor"]),
        ("start=2024-02-01T12:00:00Z", ["query", "start"]),
    ],
)
def test_history_422(client: TestClient, query: str, loc: list[str]) -> None:
    response = client.get(f"{BASE}/ev_001/history?{query}")
    assert response.status_code == 422, response.text
    assert loc in _detail_locs(response)


def test_history_naive_time_422_says_a_zone_is_needed(client: TestClient) -> None:
    response = client.get(f"{BASE}/ev_001/history?start_time=2024-02-01T12:00:00")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "start_time"]
    assert "time zone" in error["msg"]


def test_history_start_after_end_422(client: TestClient) -> None:
    response = client.get(
        f"{BASE}/ev_001/history",
        params={"start_time": "2024-02-01T12:00:01Z", "end_time": "2024-02-01T12:00:00Z"},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "start_time"]
    assert error["msg"] == "start_time is after end_time"


def test_history_bad_cursor_detail_is_readable(client: TestClient) -> None:
    response = client.get(f"{BASE}/ev_001/history?cursor=bm9wZQ")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert "cursor" in error["msg"]


def test_history_bounds_late_in_the_calendar_are_not_a_500(client: TestClient) -> None:
    # Regression: a start after 3939-01-01 with an explicit end overflowed (500, two tracebacks).
    response = client.get(
        f"{BASE}/ev_001/history",
        params={"start_time": "4000-01-01T00:00:00Z", "end_time": "4000-01-02T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


_AWARE = TypeAdapter(AwareDatetime)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=rfc3339_texts(), end=rfc3339_texts())
def test_history_answers_any_rfc3339_bounds(
    client: TestClient, writer: ReadingWriter, start: str, end: str
) -> None:
    """Years 0001-9999, any offset, any fraction: 200, or 422 when start is after end."""
    writer.store(reading("battery", 0))
    response = client.get(f"{BASE}/ev_001/history", params={"start_time": start, "end_time": end})
    first, last = _AWARE.validate_python(start), _AWARE.validate_python(end)
    if first <= last:
        assert response.status_code == 200, response.text
        stored = reading("battery", 0).timestamp
        assert len(response.json()["items"]) == (1 if first <= stored <= last else 0)
    else:
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["msg"] == "start_time is after end_time"


def test_history_cursor_schema_agrees_with_the_check(
    client: TestClient, writer: ReadingWriter
) -> None:
    """What the OpenAPI schema allows for `cursor`: the empty string (the first page) and every
    next_cursor; what it refuses, the API refuses with 422."""
    writer.store_many([reading("battery", seconds) for seconds in range(3)])
    operation = client.get("/openapi.json").json()["paths"][f"{BASE}/{{sensor_id}}/history"]
    [parameter] = [p for p in operation["get"]["parameters"] if p["name"] == "cursor"]
    schema = parameter["schema"]
    assert {"type": "string"} in schema["anyOf"]
    # A pattern constrains strings only (JSON Schema), so it may sit beside the anyOf.
    pattern = re.compile(schema["pattern"])

    def allowed(cursor: str) -> bool:
        return pattern.search(cursor) is not None

    first = client.get(f"{BASE}/ev_001/history?limit=1")
    empty = client.get(f"{BASE}/ev_001/history?limit=1&cursor=")
    assert allowed("")
    assert empty.status_code == 200, empty.text
    assert empty.json() == first.json()
    cursor = first.json()["next_cursor"]
    while cursor is not None:
        assert allowed(cursor)
        page = client.get(f"{BASE}/ev_001/history", params={"limit": 1, "cursor": cursor})
        assert page.status_code == 200
        cursor = page.json()["next_cursor"]

    @settings(max_examples=60, deadline=None)
    @given(st.text(max_size=250) | st.from_regex(pattern, fullmatch=True))
    def check(cursor: str) -> None:
        response = client.get(f"{BASE}/ev_001/history", params={"cursor": cursor})
        assert response.status_code in (200, 422), response.text
        if not allowed(cursor):
            assert response.status_code == 422
            assert _detail_locs(response) == [["query", "cursor"]]

    check()


# --- summary ------------------------------------------------------------------------------


def test_summary(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery", 0, 84), reading("battery", 60, 85.5)])
    response = client.get(f"{BASE}/ev_001/summary")
    assert response.status_code == 200
    summary = SensorSummary.model_validate_json(response.content)
    battery = summary.types["battery"]
    assert (battery.count, battery.min, battery.max, battery.mean) == (2, 84, 85.5, 84.75)
    assert response.json()["types"]["battery"]["last"] == "2024-02-01T12:01:00Z"
    assert battery.unit == "percentage"


def test_summary_404_without_data(client: TestClient) -> None:
    response = client.get(f"{BASE}/ev_404/summary")
    assert response.status_code == 404
    assert response.json() == {"detail": "no data for sensor 'ev_404'"}


# --- every route ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["ev_001", "ev_001/battery", "ev_001/history", "ev_001/summary"])
def test_unknown_query_parameters_rejected(client: TestClient, path: str) -> None:
    response = client.get(f"{BASE}/{path}?limt=5")
    assert response.status_code == 422
    assert ["query", "limt"] in _detail_locs(response)


@pytest.mark.parametrize("path", ["ev_001", "ev_001/battery", "ev_001/history", "ev_001/summary"])
def test_storage_unavailable_is_503(
    make_client: Callable[..., TestClient], closed_port: int, path: str
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.5)
    response = client.get(f"{BASE}/{path}")
    assert response.status_code == 503
    assert response.json() == {"detail": "storage unavailable"}

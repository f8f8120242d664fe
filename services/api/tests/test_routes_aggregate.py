"""GET /api/v1/sensor/{id}/aggregate and /aggregate.csv against the real Redis."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from _api_helpers import T0, reading
from _history_loader import load_history
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ev_schemas import AggregateSeries, format_epoch_ms
from ev_schemas.testing import reference
from ev_storage import ReadingWriter

pytestmark = pytest.mark.integration

URL = "/api/v1/sensor/ev_001/aggregate"
DAY = {"start_time": "2024-02-01T00:00:00Z", "end_time": "2024-02-02T00:00:00Z"}
T0_MS = int(T0.timestamp() * 1000)
HOUR = 3_600_000


def get(client: TestClient, **params: Any) -> Any:
    response = client.get(URL, params={"sensor_type": "speed", **DAY, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_buckets_with_every_aggregator(client: TestClient, writer: ReadingWriter) -> None:
    # 12:00:00, 12:00:30, 12:01:10 (out of order) and 13:30; 11:59 belongs to another bucket.
    writer.store_many(
        [
            reading("speed", 30, 20.0),
            reading("speed", 0, 10.0),
            reading("speed", 70, 60.0),
            reading("speed", 5400, 5.5),
            reading("speed", -60, 1.0),
            reading("speed", 0, 10.0),  # a redelivery: counted once
        ]
    )
    answer = get(client, interval="1h", start_time="2024-02-01T12:00:00Z")
    assert {k: v for k, v in answer.items() if k != "buckets"} == {
        "sensor_id": "ev_001",
        "sensor_type": "speed",
        "unit": "km/h",
        "interval": "1h",
        "tz": "UTC",
        "fill": "none",
        "aggregators": ["avg", "min", "max", "count", "sum", "first", "last"],
        "start_time": "2024-02-01T12:00:00Z",
        "end_time": "2024-02-02T00:00:00Z",
    }
    assert answer["buckets"] == [
        {
            "start": "2024-02-01T12:00:00Z",
            "end": "2024-02-01T13:00:00Z",
            "avg": 30.0,
            "min": 10.0,
            "max": 60.0,
            "count": 3,
            "sum": 90.0,
            "first": 10.0,
            "last": 60.0,
        },
        {
            "start": "2024-02-01T13:00:00Z",
            "end": "2024-02-01T14:00:00Z",
            "avg": 5.5,
            "min": 5.5,
            "max": 5.5,
            "count": 1,
            "sum": 5.5,
            "first": 5.5,
            "last": 5.5,
        },
    ]
    AggregateSeries.model_validate(answer)


def test_agg_fill_and_the_exclusive_end(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("speed", 0, 10.0), reading("speed", 7200, 30.0)])
    window = {"start_time": "2024-02-01T11:00:00Z", "end_time": "2024-02-01T14:00:00Z"}
    answer = get(client, interval="1h", agg="count,last", **window)
    assert answer["aggregators"] == ["count", "last"]
    assert [(b["start"][11:13], b["count"], b["last"]) for b in answer["buckets"]] == [
        ("12", 1, 10.0),
    ]  # 14:00 is the exclusive end: the reading at 14:00 is not in the range
    nulls = get(client, interval="1h", agg=["count", "last"], fill="null", **window)["buckets"]
    assert [(b["count"], b["last"]) for b in nulls] == [(0, None), (1, 10.0), (0, None)]
    carried = get(client, interval="1h", agg="avg", fill="previous", **window)["buckets"]
    assert [b["avg"] for b in carried] == [None, 10.0, 10.0]


def test_max_points_chooses_the_interval(client: TestClient) -> None:
    assert get(client, max_points=1000)["interval"] == "2m"
    assert get(client, max_points=24)["interval"] == "1h"
    assert get(client)["interval"] == "2m"  # the default max_points, 1000


def test_days_in_a_zone_across_a_dst_change(client: TestClient, writer: ReadingWriter) -> None:
    # 2024-03-31: Berlin's 23-hour day. 22:30 UTC is 23:30 on the 30th there, and 00:30 on
    # April 1st when it is the 31st in UTC.
    spring = T0.replace(month=3, day=31, hour=0)
    writer.store_many(
        [
            reading("speed", (spring - T0).total_seconds() + 3600 * hours, value)
            for hours, value in ((-1.5, 1.0), (0.5, 2.0), (21.5, 3.0), (22.5, 4.0))
        ]
    )
    answer = get(
        client,
        interval="1d",
        tz="Europe/Berlin",
        agg="sum",
        start_time="2024-03-30T00:00:00+01:00",
        end_time="2024-04-02T00:00:00+02:00",
    )
    assert answer["tz"] == "Europe/Berlin"
    assert answer["buckets"] == [
        {"start": "2024-03-29T23:00:00Z", "end": "2024-03-30T23:00:00Z", "sum": 1.0},
        {"start": "2024-03-30T23:00:00Z", "end": "2024-03-31T22:00:00Z", "sum": 5.0},
        {"start": "2024-03-31T22:00:00Z", "end": "2024-04-01T22:00:00Z", "sum": 4.0},
    ]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"interval": "1y"}, "interval", "unknown interval '1y': a whole number and a unit s, m"),
        ({"interval": "5"}, "interval", "unknown interval '5'"),
        ({"interval": "53w"}, "interval", "interval '53w' is longer than a year"),
        (
            {"interval": "1s"},
            "interval",
            "interval too small for the range: 1s gives 86400 buckets, at most 10000; "
            "use 10s or longer, or max_points",
        ),
        ({"agg": "avg,median"}, "agg", "unknown aggregator(s) 'median'; choose from avg, min"),
        ({"fill": "zero"}, "fill", "unknown fill 'zero'; choose from none, null, previous"),
        ({"tz": "Mars/Olympus", "interval": "1d"}, "tz", "unknown time zone 'Mars/Olympus'"),
        ({"max_points": 0}, "max_points", "Input should be greater than or equal to 1"),
        ({"max_points": 10001}, "max_points", "Input should be less than or equal to 10000"),
        ({"max_points": "many"}, "max_points", "Input should be a valid integer"),
        ({"interval": "1h", "max_points": 10}, "max_points", "give interval or max_points, not"),
        ({"sensor_type": "warp"}, "sensor_type", "unknown sensor type(s) 'warp'; configured:"),
        ({"sensor_type": "speed,battery"}, "sensor_type", "aggregate one sensor type at a time"),
        ({"start_time": "yesterday"}, "start_time", "Value error, must be an RFC 3339"),
        ({"end_time": "2024-01-01T00:00:00Z"}, "start_time", "start_time is after end_time"),
        ({"bucket": "1h"}, "bucket", "Unknown query parameter"),
    ],
)
def test_each_bad_parameter_is_a_422_naming_it(
    client: TestClient, params: dict[str, Any], field: str, message: str
) -> None:
    response = client.get(URL, params={"sensor_type": "speed", **DAY, **params})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", field]
    assert error["msg"].startswith(message), error["msg"]


def test_max_points_too_small_and_a_missing_type(client: TestClient) -> None:
    response = client.get(
        URL,
        params={"sensor_type": "speed", "max_points": 2, "start_time": "2024-01-01T00:00:00Z"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"].startswith("max_points=2 is too small for the")
    missing = client.get(URL, params=DAY)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "sensor_type"]


def _csv(text: str) -> tuple[list[list[str]], list[str]]:
    lines = text.split("\r\n")
    assert lines[-1] == ""
    comments = [line for line in lines[:-1] if line.startswith("#")]
    data = "\r\n".join(line for line in lines[:-1] if not line.startswith("#"))
    return list(csv.reader(io.StringIO(data, newline=""))), comments


def test_csv_by_accept_and_by_path(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("speed", 0, 10.0), reading("speed", 7200, 30.5)])
    params = {"sensor_type": "speed", **DAY, "interval": "1h", "agg": "avg,count", "fill": "null"}
    by_accept = client.get(URL, params=params, headers={"Accept": "text/csv"})
    by_path = client.get(f"{URL}.csv", params=params)
    for response in (by_accept, by_path):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == (
            'attachment; filename="ev_001_speed_aggregate.csv"'
        )
        rows, comments = _csv(response.text)
        assert rows[0] == ["sensor_id", "sensor_type", "start", "end", "avg", "count", "unit"]
        assert rows[13] == [
            "ev_001", "speed", "2024-02-01T12:00:00Z", "2024-02-01T13:00:00Z", "10.0", "1", "km/h",
        ]  # fmt: skip
        assert rows[1][4:6] == ["", "0"]
        assert comments == ["# complete: 24 rows"]
    assert by_accept.headers["vary"] == "Accept"
    assert client.get(URL, params=params, headers={"Accept": "text/html"}).json()["buckets"]
    assert client.get(f"{URL}.csv", params={**params, "fill": "x"}).status_code == 422


def test_needs_a_key_and_counts_against_the_rate_limit(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_keys="alpha", rate_limit_per_minute=2)
    params = {"sensor_type": "speed", **DAY}
    assert client.get(URL, params=params).status_code == 401
    assert client.get(f"{URL}.csv", params=params).status_code == 401
    key = {"X-API-Key": "alpha"}
    assert client.get(URL, params=params, headers=key).status_code == 200
    assert client.get(f"{URL}.csv", params=params, headers=key).status_code == 200
    limited = client.get(URL, params=params, headers=key)
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


def test_storage_unavailable_is_503(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.5)
    response = client.get(URL, params={"sensor_type": "speed", **DAY})
    assert (response.status_code, response.json()) == (503, {"detail": "storage unavailable"})


def test_a_week_of_one_hertz_readings_into_15_minute_buckets(
    client: TestClient, redis_client: redis.Redis, key_prefix: str
) -> None:
    load_history(redis_client, key_prefix, "ev_001", "speed", start_ms=T0_MS, count=7 * 86400)
    week = {"start_time": "2024-02-01T12:00:00Z", "end_time": "2024-02-08T12:00:00Z"}
    answer = get(client, max_points=1000, agg="count,first,last,sum", **week)
    assert answer["interval"] == "15m"
    assert len(answer["buckets"]) == 672
    assert {b["count"] for b in answer["buckets"]} == {900}
    first = answer["buckets"][0]
    assert (first["first"], first["last"]) == (0.0, 99.0)  # the i-th reading is i % 100
    assert sum(b["sum"] for b in answer["buckets"]) == sum(i % 100 for i in range(7 * 86400))


def test_openapi_documents_every_parameter_with_an_example(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (URL, f"{URL}.csv"):
        operation = paths[path.replace("ev_001", "{sensor_id}")]["get"]
        names = {p["name"]: p for p in operation["parameters"]}
        assert set(names) == {
            "sensor_id", "sensor_type", "start_time", "end_time", "interval", "max_points",
            "agg", "fill", "tz",
        }  # fmt: skip
        for parameter in names.values():
            assert parameter.get("examples") or parameter["schema"].get("examples"), parameter
        assert "text/csv" in operation["responses"]["200"]["content"]
    assert paths["/api/v1/sensor/{sensor_id}/aggregate"]["get"]["summary"].startswith(
        "One sensor type's readings in time buckets"
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.dictionaries(st.integers(0, 30 * HOUR), st.floats(0, 300), max_size=80),
    seed=st.integers(0, 2**32),
    start=st.integers(-2 * HOUR, 30 * HOUR),
    length=st.integers(0, 40 * HOUR),
    interval=st.sampled_from(["1m", "5m", "1h", "1d", "1w"]),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    fill=st.sampled_from(["none", "null", "previous"]),
)
def test_the_api_answers_what_aggregating_the_readings_gives(
    client: TestClient,
    writer: ReadingWriter,
    data: dict[int, float],
    seed: int,
    start: int,
    length: int,
    interval: str,
    zone: str,
    fill: str,
) -> None:
    sensor_id = f"p_{uuid.uuid4().hex[:12]}"
    readings = [reading("speed", offset / 1000, value, sensor_id) for offset, value in data.items()]
    random.Random(seed).shuffle(readings)
    writer.store_many(readings)
    start_ms = T0_MS + start
    response = client.get(
        f"/api/v1/sensor/{sensor_id}/aggregate",
        params={
            "sensor_type": "speed",
            "start_time": format_epoch_ms(start_ms),
            "end_time": format_epoch_ms(start_ms + length),
            "interval": interval,
            "tz": zone,
            "fill": fill,
        },
    )
    assert response.status_code == 200, response.text
    count, unit = int(interval[:-1]), interval[-1]
    stored = [(T0_MS + offset, value) for offset, value in data.items()]
    expected = reference(stored, start_ms, start_ms + length, (count, unit), zone, fill)
    for bucket in expected:
        bucket["start"] = format_epoch_ms(bucket["start"])  # type: ignore[arg-type]
        bucket["end"] = format_epoch_ms(bucket["end"])  # type: ignore[arg-type]
    assert response.json()["buckets"] == expected

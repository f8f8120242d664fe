"""GET /api/v1/sensor/{id}/history.csv and Accept: text/csv on /history, against the real Redis."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
from _api_helpers import T0, reading
from _history_loader import load_history
from fastapi.testclient import TestClient

from ev_api.csv_export import EXPORT_CHUNK_ROWS, ExportInterrupted
from ev_schemas import HistoryPage, Reading, format_timestamp
from ev_storage import ReadingReader, ReadingWriter, Row, StorageUnavailable

BASE = "/api/v1/sensor"
EXPORT = f"{BASE}/ev_001/history.csv"
HEADER = ["sensor_id", "sensor_type", "timestamp", "value", "unit"]
T0_MS = int(T0.timestamp() * 1000)


def parse(body: str) -> tuple[list[list[str]], list[str]]:
    """(data rows, '#' lines) of an export; checks the header and the CRLF line ends."""
    lines = body.split("\r\n")
    assert lines[-1] == "", "the body ends with CRLF"
    comments = [line for line in lines[:-1] if line.startswith("#")]
    data = [line for line in lines[:-1] if not line.startswith("#")]
    rows = list(csv.reader(io.StringIO("\r\n".join(data), newline="")))
    assert rows[0] == HEADER
    return rows[1:], comments


def as_row(item: Reading) -> list[str]:
    stamp = format_timestamp(item.timestamp)
    return [item.sensor_id, item.sensor_type, stamp, repr(item.value), item.unit]


def test_export_content_headers_and_marker(client: TestClient, writer: ReadingWriter) -> None:
    stored = [reading("battery", s, 80 - s / 10) for s in range(5)] + [
        reading("speed", 2.5, 42.25),
        reading("battery", 2.5, 12),  # same instant as speed: battery sorts first
    ]
    writer.store_many(stored)
    response = client.get(EXPORT, params={"sensor_type": "battery,speed"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="ev_001_history.csv"'
    rows, comments = parse(response.text)
    expected = sorted(stored, key=lambda r: (r.timestamp, r.sensor_type))
    assert rows == [as_row(item) for item in expected]
    assert rows[3][:3] == ["ev_001", "battery", "2024-02-01T12:00:02.500Z"]
    assert comments == [f"# complete: {len(stored)} rows"]
    assert response.text.endswith(f"\r\n# complete: {len(stored)} rows\r\n")
    # What pandas' comment="#" and R's comment.char="#" read: the rows and nothing else.


def test_export_takes_every_configured_type_by_default_and_the_history_filters(
    client: TestClient, writer: ReadingWriter
) -> None:
    writer.store_many([reading("battery", 0), reading("speed", 1), reading("temperature", 2, 20)])
    rows, _ = parse(client.get(EXPORT).text)
    assert [row[1] for row in rows] == ["battery", "speed", "temperature"]
    for query in ("sensor_type=speed,temperature", "sensor_type=speed&sensor_type=temperature"):
        rows, _ = parse(client.get(f"{EXPORT}?{query}").text)
        assert [row[1] for row in rows] == ["speed", "temperature"]
    response = client.get(
        EXPORT,
        params={"start_time": "2024-02-01T13:00:01+01:00", "end_time": "2024-02-01T12:00:01Z"},
    )
    rows, comments = parse(response.text)
    assert [row[1] for row in rows] == ["speed"]
    assert comments == ["# complete: 1 rows"]


def test_export_is_the_concatenation_of_the_history_pages(
    client: TestClient, redis_client: redis.Redis, key_prefix: str
) -> None:
    """More rows than one chunk of the export and than many pages, over several types at
    different rates: the same rows, in the same order, as paging the JSON history."""
    for sensor_type, interval in (("battery", 1000), ("speed", 700), ("temperature", 5000)):
        count = 3 * EXPORT_CHUNK_ROWS if sensor_type != "temperature" else 100
        load_history(
            redis_client,
            key_prefix,
            "ev_001",
            sensor_type,
            start_ms=T0_MS,
            count=count,
            interval_ms=interval,
        )
    paged: list[list[str]] = []
    params: dict[str, Any] = {"limit": 1000, "sensor_type": "battery,speed,temperature"}
    while True:
        answer = client.get(f"{BASE}/ev_001/history", params=params)
        page = HistoryPage.model_validate_json(answer.content)
        paged += [as_row(item) for item in page.items]
        if page.next_cursor is None:
            break
        params["cursor"] = page.next_cursor
    response = client.get(EXPORT, params={"sensor_type": "battery,speed,temperature"})
    rows, comments = parse(response.text)
    assert len(rows) == 2 * 3 * EXPORT_CHUNK_ROWS + 100
    assert rows == paged
    assert comments == [f"# complete: {len(rows)} rows"]


def test_a_sensor_without_data_is_an_empty_complete_export(client: TestClient) -> None:
    """As the history answers an empty page (not a 404): 'nothing in this range' is an answer,
    and an export tool gets a file it can read either way."""
    response = client.get(f"{BASE}/ev_404/history.csv")
    assert response.status_code == 200
    assert response.text == "sensor_id,sensor_type,timestamp,value,unit\r\n# complete: 0 rows\r\n"


@pytest.mark.parametrize(
    ("query", "loc", "msg"),
    [
        ("start_time=yesterday", ["query", "start_time"], "RFC 3339"),
        ("end_time=2024-02-30T00:00:00Z", ["query", "end_time"], ""),
        ("start_time=2024-02-01T12:00:00", ["query", "start_time"], "time zone"),
        ("sensor_type=battery,warp_drive", ["query", "sensor_type"], "'warp_drive'"),
        ("sensor_type=,", ["query", "sensor_type"], "name at least one sensor type"),
        (
            "start_time=2024-02-01T12:00:01Z&end_time=2024-02-01T12:00:00Z",
            ["query", "start_time"],
            "start_time is after end_time",
        ),
        ("limit=5", ["query", "limit"], "Unknown query parameter"),
        ("cursor=abc", ["query", "cursor"], "Unknown query parameter"),
    ],
)
def test_export_422_as_the_history(
    client: TestClient, query: str, loc: list[str], msg: str
) -> None:
    response = client.get(f"{EXPORT}?{query}")
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    [error] = [e for e in errors if e["loc"] == loc]
    assert msg in error["msg"]
    history = client.get(f"{BASE}/ev_001/history?{query}")
    if "Unknown" not in msg:  # limit and cursor are history's own
        assert history.json()["detail"] == errors


def test_export_sensor_id_422(client: TestClient) -> None:
    response = client.get(f"{BASE}/bad!id/history.csv")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "sensor_id"]


def test_export_needs_a_key_and_counts_against_the_rate_limit(
    make_client: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    writer.store_many([reading()])
    client = make_client(api_keys="alpha", rate_limit_per_minute=2)
    refused = client.get(EXPORT)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "missing X-API-Key header"}
    key = {"X-API-Key": "alpha"}
    assert client.get(EXPORT, headers=key).status_code == 200
    assert client.get(f"{BASE}/ev_001/history", headers=key).status_code == 200
    limited = client.get(EXPORT, headers=key)
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


def test_storage_unavailable_before_the_answer_is_503(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    """The first chunk is read before the answer starts: a Redis that is down from the start is
    the 503 of every other route, not an interrupted export."""
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.5)
    response = client.get(EXPORT)
    assert (response.status_code, response.json()) == (503, {"detail": "storage unavailable"})


def _failing_after(chunks_before_failure: int) -> Callable[..., AsyncIterator[list[Row]]]:
    original = ReadingReader.history_chunks

    def history_chunks(self: ReadingReader, *args: Any, **kwargs: Any) -> AsyncIterator[list[Row]]:
        inner = original(self, *args, **kwargs)

        async def failing() -> AsyncIterator[list[Row]]:
            sent = 0
            async for chunk in inner:
                if sent == chunks_before_failure:
                    raise StorageUnavailable("Redis unavailable: connection reset by peer")
                sent += 1
                yield chunk

        return failing()

    return history_chunks


def test_redis_failing_mid_stream_ends_without_the_marker(
    make_client: Callable[..., TestClient],
    redis_client: redis.Redis,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    load_history(redis_client, key_prefix, "ev_001", "battery", start_ms=T0_MS, count=5000)
    monkeypatch.setattr(ReadingReader, "history_chunks", _failing_after(2))
    client = make_client()
    # The exception reaches the server (which drops the connection: test_export_process.py);
    # the test client hands it to the test after the body so far.
    parts: list[bytes] = []

    def download() -> None:
        with client.stream("GET", EXPORT) as response:
            assert response.status_code == 200
            parts.extend(response.iter_bytes())

    with pytest.raises(ExportInterrupted, match=r"interrupted after \d+ rows: Redis unavailable"):
        download()
    body = b"".join(parts)
    assert body.startswith(b"sensor_id,")
    assert b"# complete" not in body
    assert "interrupted after" in caplog.text
    # Logged once, in one line: no "failed" traceback from the 500 handler.
    assert "failed" not in caplog.text


# --- Accept: text/csv on the JSON history ----------------------------------------------------


def test_history_with_accept_csv_is_the_page_as_csv(
    client: TestClient, writer: ReadingWriter
) -> None:
    writer.store_many([reading(t, s) for s in range(5) for t in ("battery", "speed")])
    json_page = client.get(f"{BASE}/ev_001/history", params={"limit": 4}).json()
    response = client.get(
        f"{BASE}/ev_001/history", params={"limit": 4}, headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["vary"] == "Accept"
    rows, comments = parse(response.text)
    assert rows == [as_row(Reading.model_validate(item)) for item in json_page["items"]]
    assert comments == ["# complete: 4 rows"]
    link = response.headers["link"]
    assert link == (
        f'</api/v1/sensor/ev_001/history?limit=4&cursor={json_page["next_cursor"]}>; rel="next"'
    )
    # Following the links reads the rest, the last page without one.
    seen = list(rows)
    while "link" in response.headers:
        url = response.headers["link"].split(">")[0][1:]
        response = client.get(url, headers={"Accept": "text/csv"})
        seen += parse(response.text)[0]
    assert seen == parse(client.get(EXPORT).text)[0]


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "text/html", "application/json, text/csv"]
)
def test_history_stays_json_for_other_accept_headers(
    client: TestClient, writer: ReadingWriter, accept: str | None
) -> None:
    writer.store_many([reading()])
    headers = {} if accept is None else {"Accept": accept}
    response = client.get(f"{BASE}/ev_001/history", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    assert len(response.json()["items"]) == 1


def test_history_csv_errors_stay_json(client: TestClient) -> None:
    response = client.get(f"{BASE}/ev_001/history?limit=0", headers={"Accept": "text/csv"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


# --- OpenAPI ---------------------------------------------------------------------------------


def test_export_is_documented_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][f"{BASE}/{{sensor_id}}/history.csv"]["get"]
    assert operation["summary"].startswith("Stored readings between two instants as one CSV")
    content = operation["responses"]["200"]["content"]
    assert list(content) == ["text/csv"]
    assert content["text/csv"]["example"].endswith("# complete: 3 rows\r\n")
    assert {"401", "422", "503"} <= operation["responses"].keys()
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert set(parameters) == {"sensor_id", "start_time", "end_time", "sensor_type"}
    for parameter in parameters.values():
        assert parameter.get("examples") or parameter["schema"].get("examples"), parameter["name"]
    history = schema["paths"][f"{BASE}/{{sensor_id}}/history"]["get"]
    assert {"application/json", "text/csv"} <= history["responses"]["200"]["content"].keys()

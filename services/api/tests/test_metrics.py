"""GET /metrics: request counts and latencies by route template, method and status."""

from __future__ import annotations

from collections.abc import Callable

from _api_helpers import reading
from fastapi import APIRouter
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ev_api import __version__
from ev_api.metrics import UNMATCHED, RouteTemplates
from ev_storage import ReadingWriter

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> tuple[str, Samples]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def requests(samples: Samples, route: str, status: str, method: str = "GET") -> float | None:
    labels = frozenset({("method", method), ("route", route), ("status", status)})
    return samples.get(("ev_api_requests_total", labels))


def test_requests_are_counted_by_route_template(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery")])
    for _ in range(2):
        assert client.get("/api/v1/sensor/ev_001/battery").status_code == 200
    assert client.get("/api/v1/sensor/ev_404/battery").status_code == 404
    assert client.get("/api/v1/sensor/ev_001").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    text, samples = scrape(client)
    template = "/api/v1/sensor/{sensor_id}/{sensor_type}"
    assert requests(samples, template, "200") == 2
    assert requests(samples, template, "404") == 1
    assert requests(samples, "/api/v1/sensor/{sensor_id}", "200") == 1
    assert requests(samples, UNMATCHED, "404") == 1
    duration = frozenset({("method", "GET"), ("route", template)})
    assert samples[("ev_api_request_duration_seconds_count", duration)] == 3
    assert samples[("ev_api_request_duration_seconds_sum", duration)] > 0
    # Raw paths never become labels: their values are the clients' to choose.
    assert "ev_404" not in text
    assert "/no/such/path" not in text
    assert samples[("ev_api_info", frozenset({("version", __version__)}))] == 1
    assert ("process_cpu_seconds_total", frozenset()) in samples


def test_errors_are_counted_with_their_status(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.5)
    assert client.get("/api/v1/sensor/ev_001").status_code == 503
    assert client.get("/health/ready").status_code == 503
    _, samples = scrape(client)
    assert requests(samples, "/api/v1/sensor/{sensor_id}", "503") == 1
    assert requests(samples, "/health/ready", "503") == 1


def test_unknown_methods_share_one_label(client: TestClient) -> None:
    assert client.request("BREW", "/health/live").status_code == 405
    _, samples = scrape(client)
    assert requests(samples, "/health/live", "405", method="OTHER") == 1


def test_open_websockets_are_gauged(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery")])
    with client.websocket_connect("/api/v1/ws/sensor/ev_001?types=battery") as ws:
        ws.receive_json()
        assert scrape(client)[1][("ev_api_websockets_open", frozenset())] == 1
    assert scrape(client)[1][("ev_api_websockets_open", frozenset())] == 0


def test_needs_no_key_and_is_not_in_openapi(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys="secret")
    assert client.get("/metrics").status_code == 200
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_route_templates_get_their_router_prefix_back() -> None:
    router = APIRouter()

    @router.get("/sensor/{sensor_id}")
    async def sensor(sensor_id: str) -> None:
        """A route."""

    (route,) = router.routes
    templates = RouteTemplates()
    assert templates.of({"route": route}) == "/sensor/{sensor_id}"  # unregistered: its own path
    templates.add(router, "/api/v1")
    assert templates.of({"route": route}) == "/api/v1/sensor/{sensor_id}"
    assert templates.of({}) == UNMATCHED

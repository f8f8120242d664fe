"""Error answers: JSON with ``detail`` everywhere, 500s logged with their traceback."""

from __future__ import annotations

import logging

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from ev_api import Settings, create_app
from ev_api.errors import error_responses, storage_unavailable
from ev_schemas import ErrorResponse
from ev_storage import StorageError, StorageUnavailable, TlsVerificationFailed, UnknownSensorType


@pytest.fixture
def failing(settings: Settings) -> TestClient:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/storage-bug")
    async def storage_bug() -> None:
        raise StorageError("Redis error: WRONGTYPE")

    @app.get("/certificate")
    async def certificate() -> None:
        raise TlsVerificationFailed("certificate has expired", "redis:6380")

    @app.get("/bad-type")
    async def bad_type() -> None:
        raise UnknownSensorType("warp", ["battery"])

    return TestClient(app, raise_server_exceptions=False)


def test_unexpected_errors_are_500_and_logged(
    failing: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="ev_api.errors"), failing:
        response = failing.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    [record] = [r for r in caplog.records if r.name == "ev_api.errors"]
    assert record.getMessage() == "GET '/boom' failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_a_storage_error_that_is_no_outage_is_500(failing: TestClient) -> None:
    with failing:
        response = failing.get("/storage-bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}


def test_a_redis_certificate_that_stopped_verifying_is_503_and_an_error_in_the_log(
    failing: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="ev_api.errors"), failing:
        response = failing.get("/certificate")
    assert response.status_code == 503
    assert response.json() == {"detail": "storage unavailable"}
    [record] = [r for r in caplog.records if r.name == "ev_api.errors"]
    assert record.levelno == logging.ERROR
    assert "certificate has expired (redis:6380)" in record.getMessage()
    assert record.exc_info is None  # one line, no traceback


def test_invalid_storage_arguments_are_422(failing: TestClient) -> None:
    with failing:
        response = failing.get("/bad-type")
    assert response.status_code == 422
    assert response.json() == {"detail": "unknown sensor type 'warp'; known: battery"}


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("POST", "/health")])
def test_routing_errors_are_json(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code in (404, 405)
    assert set(response.json()) == {"detail"}


def test_error_responses_document_error_response() -> None:
    documented = error_responses(401, 503)
    assert set(documented) == {401, 503}
    assert documented[401]["model"] is ErrorResponse


@pytest.mark.anyio
async def test_a_crafted_path_cannot_forge_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    # Routes validate sensor ids before any Redis call; this guards the handler on its own.
    path = "/api/v1/sensor/x\x1b[2KFAKE ERROR line" + "y" * 1000  # a terminal escape
    request = Request({"type": "http", "method": "GET", "path": path, "headers": []})
    response = await storage_unavailable(request, StorageUnavailable("refused"))
    assert response.status_code == 503
    [line] = [line for line in caplog.text.splitlines() if "Redis unavailable" in line]
    assert "\x1b" not in line
    assert "\\x1b[2KFAKE" in line
    assert len(line) < 300


@pytest.mark.parametrize("path", ["/nope", "/health", "/api/v1/sensor/ev_001", "/api/v1/ws/nope"])
def test_a_websocket_to_no_websocket_route_is_a_json_404(client: TestClient, path: str) -> None:
    # Starlette closed such a handshake, which uvicorn answers with a 403 and an empty text body.
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(path):
        pass
    assert denied.value.status_code == 404
    assert denied.value.json() == {"detail": "Not Found"}


def test_http_to_no_route_is_still_a_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_an_unexpected_error_is_logged_once_and_stops_in_the_app(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: Starlette re-raised it after the 500 for the server to log: a second traceback.
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    # raise_server_exceptions: anything leaving the app would be raised here, as uvicorn logs it.
    with caplog.at_level(logging.INFO), TestClient(app, raise_server_exceptions=True) as client:
        response = client.get("/boom")
    assert (response.status_code, response.json()) == (500, {"detail": "internal error"})
    assert [(r.name, r.getMessage()) for r in caplog.records if r.exc_info] == [
        ("ev_api.errors", "GET '/boom' failed")
    ]

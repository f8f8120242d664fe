"""The app factory: OpenAPI document, route order, lazy module attribute, lifespan."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import ev_api.app as app_module
from ev_api import Settings, __version__, create_app
from ev_api.routes import sensors

SENSOR = "/api/v1/sensor/{sensor_id}"


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_openapi_lists_the_routes(openapi: dict[str, Any]) -> None:
    assert openapi["info"]["title"] == "EV telemetry API"
    assert openapi["info"]["version"] == __version__
    assert set(openapi["paths"]) == {
        "/health",
        "/health/live",
        "/health/ready",
        SENSOR,
        f"{SENSOR}/history",
        f"{SENSOR}/history.csv",
        f"{SENSOR}/aggregate",
        f"{SENSOR}/aggregate.csv",
        f"{SENSOR}/summary",
        f"{SENSOR}/alarms",
        f"{SENSOR}/{{sensor_type}}",
        "/api/v1/alarms",
        "/api/v1/alarms/{alarm_id}/ack",
        "/api/v1/sensors",
        "/api/v1/sensors/count",
        "/api/v1/aggregate",
        "/api/v1/alarm-rules",
    }


def test_openapi_summaries_come_from_docstrings(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    assert (
        paths[SENSOR]["get"]["summary"]
        == "The latest reading of every type the sensor has reported"
    )
    history = paths[f"{SENSOR}/history"]["get"]
    assert history["summary"].startswith("Stored readings between two instants")
    assert "`end_time` defaults to now" in history["description"]


def test_openapi_declares_the_api_key_scheme_when_keys_are_configured(
    make_client: Callable[..., TestClient],
) -> None:
    openapi = make_client(api_keys="k1").get("/openapi.json").json()
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }
    assert openapi["paths"][SENSOR]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in openapi["paths"]["/health"]["get"]


def test_openapi_needs_no_key_when_none_is_configured(openapi: dict[str, Any]) -> None:
    assert "security" not in openapi["paths"][SENSOR]["get"]
    # Only the alarm rules routes need a key then: always an admin key.
    assert set(openapi["components"]["securitySchemes"]) == {"AdminKey"}
    secured = {
        path
        for path, operations in openapi["paths"].items()
        for operation in operations.values()
        if "security" in operation
    }
    assert secured == {"/api/v1/alarm-rules"}


@pytest.mark.parametrize(
    ("path", "model", "errors"),
    [
        (SENSOR, "SensorReadings", {"401", "404", "422", "503"}),
        (f"{SENSOR}/{{sensor_type}}", "Reading", {"401", "404", "422", "503"}),
        (f"{SENSOR}/history", "HistoryPage", {"401", "422", "503"}),
        (f"{SENSOR}/summary", "SensorSummary", {"401", "404", "422", "503"}),
        ("/api/v1/sensors", "FleetPage", {"401", "422", "503"}),
        ("/api/v1/sensors/count", "FleetCount", {"401", "422", "503"}),
    ],
)
def test_openapi_responses(
    openapi: dict[str, Any], path: str, model: str, errors: set[str]
) -> None:
    responses = openapi["paths"][path]["get"]["responses"]
    ok = responses["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": f"#/components/schemas/{model}"}
    assert set(responses) == {"200", *errors}
    for code in errors:
        schema = responses[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert openapi["components"]["schemas"][model]["examples"]


def test_history_and_summary_are_matched_before_sensor_type() -> None:
    paths = [r.path for r in sensors.router.routes if isinstance(r, APIRoute)]
    assert paths.index("/sensor/{sensor_id}/history") < paths.index(
        "/sensor/{sensor_id}/{sensor_type}"
    )
    assert paths.index("/sensor/{sensor_id}/summary") < paths.index(
        "/sensor/{sensor_id}/{sensor_type}"
    )


def test_module_app_is_built_lazily_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "8765")
    app_module._default_app.cache_clear()
    try:
        app = app_module.app
        assert isinstance(app, FastAPI)
        assert app_module.app is app
        assert app.state.freeze_gc
    finally:
        app_module._default_app.cache_clear()
    with pytest.raises(AttributeError):
        _ = app_module.nothing_here


def test_freeze_gc_after_startup(settings: Settings) -> None:
    try:
        with TestClient(create_app(settings, freeze_gc=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_starts_and_stops_promptly_every_time(settings: Settings) -> None:
    # Shutdown once hung: a cancellation of the hub landing while redis-py was connecting was
    # lost. Cycles run in a thread so that a regression fails here instead of hanging the run.
    def cycles() -> None:
        for _ in range(40):
            with TestClient(create_app(settings)) as client:
                client.get("/openapi.json")

    worker = threading.Thread(target=cycles, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "app shutdown hung"

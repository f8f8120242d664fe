"""Shared dependencies: which query parameters a route declares, settings resolution, resources."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection

from ev_api import Settings, create_app
from ev_api.deps import declared_query_names, get_resources, resolve_settings
from ev_api.routes import health, live, live_alarms, sensors


def _dependant_of(router: APIRouter, path: str) -> object:
    """The dependant of a router's route (included routers keep their own route objects)."""
    [route] = [
        r for r in router.routes if isinstance(r, APIRoute | APIWebSocketRoute) and r.path == path
    ]
    return route.dependant


@pytest.mark.parametrize(
    ("router", "path", "names"),
    [
        (health.router, "/health", set()),
        (sensors.router, "/sensor/{sensor_id}", set()),
        (sensors.router, "/sensor/{sensor_id}/{sensor_type}", set()),
        (
            sensors.router,
            "/sensor/{sensor_id}/history",
            {"start_time", "end_time", "sensor_type", "limit", "cursor"},
        ),
        (live.router, "/ws/sensor/{sensor_id}", {"types", "api_key", "alarms"}),
        (
            live_alarms.router,
            "/ws/alarms",
            {"severity", "sensor_type", "rule", "prefix", "api_key"},
        ),
    ],
)
def test_declared_query_names(router: APIRouter, path: str, names: set[str]) -> None:
    assert declared_query_names(_dependant_of(router, path)) == names  # type: ignore[arg-type]


def test_resolve_settings_gives_the_apps_own(make_settings: Callable[..., Settings]) -> None:
    given = make_settings(ws_queue_size=3)
    app = create_app(given)
    assert resolve_settings(app) is given
    assert not app.dependency_overrides  # an override would slow every request down


def test_resolve_settings_refuses_something_else(settings: Settings) -> None:
    app = create_app(settings)
    app.state.settings = {"redis_host": "x"}
    with pytest.raises(TypeError, match="are a dict"):
        resolve_settings(app)


def test_resources_need_the_lifespan() -> None:
    with pytest.raises(RuntimeError, match="lifespan has not run"):
        get_resources(HTTPConnection({"type": "http", "state": {}}))

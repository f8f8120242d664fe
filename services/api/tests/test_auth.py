"""API-key authentication of the /api/v1 routes (the WebSocket's is in test_routes_live.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ev_api.auth import key_accepted

KEYS = (SecretStr("alpha"), SecretStr("beta"))


def test_key_accepted() -> None:
    assert key_accepted(None, ())  # authentication off
    assert key_accepted("anything", ())
    assert key_accepted("alpha", KEYS)
    assert key_accepted("beta", KEYS)
    assert not key_accepted(None, KEYS)
    assert not key_accepted("", KEYS)
    assert not key_accepted("alph", KEYS)
    assert not key_accepted("alpha ", KEYS)
    assert not key_accepted("ÄLPHA", KEYS)  # non-ASCII input is compared, not an error


@pytest.fixture
def secured(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_keys="alpha, beta")


@pytest.mark.parametrize("path", ["ev_001", "ev_001/battery", "ev_001/history", "ev_001/summary"])
def test_every_api_route_needs_a_key(secured: TestClient, path: str) -> None:
    response = secured.get(f"/api/v1/sensor/{path}")
    assert response.status_code == 401
    assert response.json() == {"detail": "missing X-API-Key header"}
    assert response.headers["WWW-Authenticate"] == "ApiKey"


def test_wrong_key_is_401(secured: TestClient) -> None:
    response = secured.get("/api/v1/sensor/ev_001", headers={"X-API-Key": "gamma"})
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid API key"}
    assert response.headers["WWW-Authenticate"] == "ApiKey"


def test_any_configured_key_is_accepted(secured: TestClient) -> None:
    for key in ("alpha", "beta"):
        response = secured.get("/api/v1/sensor/ev_001", headers={"X-API-Key": key})
        assert response.status_code == 404  # authenticated; the sensor has no data


def test_authentication_comes_before_input_validation(secured: TestClient) -> None:
    response = secured.get("/api/v1/sensor/bad!id/history?typo=1")
    assert response.status_code == 401


def test_query_parameter_is_not_a_key_for_http_routes(secured: TestClient) -> None:
    response = secured.get("/api/v1/sensor/ev_001?api_key=alpha")
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json", "/redoc"])
def test_health_and_docs_stay_open(secured: TestClient, path: str) -> None:
    assert secured.get(path).status_code == 200


def test_without_keys_no_header_is_needed(client: TestClient) -> None:
    assert client.get("/api/v1/sensor/ev_001").status_code == 404

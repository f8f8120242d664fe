"""GET /health and /health/ready: 200 with Redis' latency, 503 promptly when Redis does not
answer; GET /health/live: 200 whenever the process serves."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from ev_api import __version__


def test_ok_when_redis_answers(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    redis = body["dependencies"]["redis"]
    assert redis["status"] == "ok"
    assert redis["latency_ms"] >= 0
    assert redis["error"] is None


def test_unavailable_promptly_when_redis_refuses(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.5)
    started = time.monotonic()
    response = client.get("/health")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    redis = body["dependencies"]["redis"]
    assert redis["status"] == "unavailable"
    assert redis["latency_ms"] is None
    assert redis["error"].startswith("Redis unavailable")
    assert elapsed < 2.0


def test_needs_no_api_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys="secret")
    assert client.get("/health").status_code == 200


def test_rejects_unknown_query_parameters(client: TestClient) -> None:
    response = client.get("/health", params={"verbose": "1"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "verbose"]


def test_ready_answers_like_health(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["dependencies"]["redis"]["status"] == "ok"


def test_live_but_not_ready_while_redis_refuses(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.5)
    live = client.get("/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok", "version": __version__, "dependencies": {}}
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["dependencies"]["redis"]["status"] == "unavailable"


def test_probes_need_no_api_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys="secret")
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200

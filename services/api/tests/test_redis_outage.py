"""Redis hung (SIGSTOP) or gone (killed), then back: prompt 503s, no 500, recovery without restart.

Each test runs its own redis-server on a free port, never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx2
import pytest
import redis
from _api_helpers import reading, wait_until
from _private_redis import PrivateRedis
from fastapi.testclient import TestClient

from ev_storage import ReadingWriter, StorageSettings

pytestmark = pytest.mark.faults

TIMEOUT_S = 0.5
LATEST = "/api/v1/sensor/ev_001"
ROUTES = [LATEST, f"{LATEST}/battery", f"{LATEST}/history", f"{LATEST}/summary"]


def timed(client: TestClient, path: str) -> tuple[httpx2.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def assert_unavailable(client: TestClient) -> None:
    response, elapsed = timed(client, "/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["dependencies"]["redis"]["status"] == "unavailable"
    assert body["dependencies"]["redis"]["error"]
    assert elapsed < 3 * TIMEOUT_S
    for path in ROUTES:
        response, elapsed = timed(client, path)
        assert (response.status_code, response.json()) == (503, {"detail": "storage unavailable"})
        assert elapsed < 4 * TIMEOUT_S, f"{path} took {elapsed:.2f} s"


def recovered(client: TestClient) -> bool:
    return (
        client.get("/health").status_code == 200
        and client.get(f"{LATEST}/battery").status_code == 200
    )


def store(server: PrivateRedis, key_prefix: str) -> None:
    with redis.Redis(port=server.port) as direct:
        ReadingWriter(direct, StorageSettings(key_prefix=key_prefix)).store_many([reading()])


@pytest.mark.parametrize("outage", ["hang", "refused"])
def test_outage_answers_503_promptly_and_recovers(
    make_private_client: Callable[..., TestClient],
    private_redis: PrivateRedis,
    key_prefix: str,
    outage: str,
) -> None:
    client = make_private_client(redis_socket_timeout_s=TIMEOUT_S)
    store(private_redis, key_prefix)
    assert recovered(client)
    if outage == "hang":
        private_redis.pause()
        assert_unavailable(client)
        private_redis.resume()
    else:
        private_redis.kill()
        assert_unavailable(client)
        private_redis.start()  # same port, empty: the data has to be stored again
        store(private_redis, key_prefix)
    wait_until(lambda: recovered(client), timeout=10, what="the API to recover")


def test_websocket_resubscribes_after_a_redis_restart(
    make_private_client: Callable[..., TestClient],
    private_redis: PrivateRedis,
    key_prefix: str,
) -> None:
    client = make_private_client(redis_socket_timeout_s=TIMEOUT_S)
    store(private_redis, key_prefix)
    with client.websocket_connect("/api/v1/ws/sensor/ev_001?types=battery") as ws:
        assert ws.receive_json()["value"] == 50.0
        private_redis.restart()
        # Stored after the restart: the client gets it either live (the hub re-subscribed first)
        # or from the catch-up read that follows the re-subscription; never not at all.
        with redis.Redis(port=private_redis.port) as direct:
            writer = ReadingWriter(direct, StorageSettings(key_prefix=key_prefix))
            writer.store_many([reading(seconds=1, value=51)])
            assert ws.receive_json()["value"] == 51
            writer.store_many([reading(seconds=2, value=52)])  # and live again from then on
            assert ws.receive_json()["value"] == 52

"""Rate limiting: per key or per address, shared through Redis, 429 with Retry-After, fail modes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
from _api_helpers import reading
from _private_redis import PrivateRedis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from starlette.websockets import WebSocketDisconnect

from ev_api.limiter import LimiterUnavailable, RateLimiter
from ev_storage import ReadingWriter

pytestmark = pytest.mark.faults

LATEST = "/api/v1/sensor/ev_001/battery"


def test_429_with_retry_after_once_the_limit_is_used(
    make_client: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    writer.store_many([reading()])
    client = make_client(rate_limit_per_minute=3)
    assert [client.get(LATEST).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(LATEST)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("rate limit exceeded: 3 requests per minute")
    # Health and the docs are never limited.
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_each_key_has_its_own_budget_and_keys_are_not_stored_raw(
    make_client: Callable[..., TestClient],
    writer: ReadingWriter,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    writer.store_many([reading()])
    client = make_client(api_keys="alpha-key,beta-key", rate_limit_per_minute=2)
    alpha, beta = {"X-API-Key": "alpha-key"}, {"X-API-Key": "beta-key"}
    assert [client.get(LATEST, headers=alpha).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get(LATEST, headers=beta).status_code == 200
    # Refused before counting: a wrong key neither uses nor learns anyone's budget.
    assert client.get(LATEST, headers={"X-API-Key": "nope"}).status_code == 401
    counters = sorted(key.decode() for key in redis_client.scan_iter(f"{key_prefix}ratelimit:*"))
    assert len(counters) == 2
    assert not any("alpha" in key or "beta" in key for key in counters)
    ttl = redis_client.pttl(counters[0])
    assert 0 < ttl <= 60_000


def test_replicas_share_the_budget(
    make_client: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    writer.store_many([reading()])
    first, second = make_client(rate_limit_per_minute=2), make_client(rate_limit_per_minute=2)
    assert first.get(LATEST).status_code == 200
    assert second.get(LATEST).status_code == 200
    assert first.get(LATEST).status_code == 429
    assert second.get(LATEST).status_code == 429


def test_websocket_connections_count(
    make_client: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    writer.store_many([reading()])
    client = make_client(rate_limit_per_minute=1)
    with client.websocket_connect("/api/v1/ws/sensor/ev_001") as ws:
        assert ws.receive_json()["sensor_type"] == "battery"
    with (
        client.websocket_connect("/api/v1/ws/sensor/ev_001") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 1013
    assert closed.value.reason is not None
    assert closed.value.reason.startswith("rate limit exceeded; retry after")


@pytest.mark.anyio
async def test_limiter_with_redis_down(closed_port: int) -> None:
    # A refused connect on loopback returns at once; the generous timeouts only keep a stalled
    # event loop on a loaded machine from reading as a hung Redis. No client retries: their
    # backoff once took longer than the limiter's timeout in CI (3 Pythons' suites at once).
    client = redis.asyncio.Redis(
        port=closed_port,
        socket_connect_timeout=2.0,
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
    )
    try:
        options = {"prefix": "p:", "limit": 1, "timeout": 10.0}
        opened = RateLimiter.on_redis(client, fail_open=True, **options)  # type: ignore[arg-type]
        assert (await opened.hit("addr:x")).allowed
        closed = RateLimiter.on_redis(client, fail_open=False, **options)  # type: ignore[arg-type]
        with pytest.raises(LimiterUnavailable):
            await closed.hit("addr:x")
    finally:
        await client.aclose()


@pytest.mark.parametrize("fail_open", [True, False])
def test_redis_down_fail_open_or_closed(
    make_client: Callable[..., TestClient],
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
    fail_open: bool,
) -> None:
    client = make_client(
        redis_port=closed_port,
        redis_socket_timeout_s=0.3,
        rate_limit_per_minute=1,
        rate_limit_fail_open=fail_open,
        api_keys="the-key",
    )
    response = client.get(LATEST, headers={"X-API-Key": "the-key"})
    # Failing open the request goes on (and meets the same dead Redis in the route);
    # failing closed the limiter refuses it itself.
    assert response.status_code == 503
    expected = "storage unavailable" if fail_open else "rate limiter unavailable"
    assert response.json() == {"detail": expected}
    logged = "fail open" in caplog.text
    assert logged is fail_open
    assert "the-key" not in caplog.text


def test_the_check_is_one_script_call_per_request(
    make_private_client: Callable[..., TestClient], private_redis: PrivateRedis
) -> None:
    """The cost guard: one EVALSHA per request and nothing else (a private Redis, so the command
    statistics are this test's alone)."""
    client = make_private_client(rate_limit_per_minute=1_000_000)
    client.get(LATEST)  # loads the script (NOSCRIPT, then EVAL) and opens the connection
    with redis.Redis(port=private_redis.port) as direct:
        direct.config_resetstat()
        for _ in range(20):
            assert client.get(LATEST).status_code == 404
        stats = direct.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in stats.items()}
    calls.pop("config|resetstat", None)
    # Redis counts the script's own INCR and PTTL too; no PEXPIRE: the window was already open.
    assert calls == {"evalsha": 20, "incr": 20, "pttl": 20, "get": 20}


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_hung_redis_is_a_prompt_503_in_either_mode(
    make_private_client: Callable[..., TestClient], private_redis: PrivateRedis, fail_open: bool
) -> None:
    """Redis frozen: the limiter's timeout is the only wait, REST and WebSocket alike. (Failing
    open, the request used to go on to wait as long again in the route; the WebSocket then
    waited for its subscription, twice as long.)"""
    timeout = 0.6
    client = make_private_client(
        redis_socket_timeout_s=timeout, rate_limit_per_minute=100, rate_limit_fail_open=fail_open
    )
    assert client.get(LATEST).status_code == 404  # connections open, script loaded
    detail = "storage unavailable" if fail_open else "rate limiter unavailable"
    private_redis.pause()
    try:
        started = time.monotonic()
        response = client.get(LATEST)
        elapsed = time.monotonic() - started
        assert (response.status_code, response.json()) == (503, {"detail": detail})
        assert elapsed <= 1.0, f"503 after {elapsed:.2f} s"
        started = time.monotonic()
        with (
            client.websocket_connect("/api/v1/ws/sensor/ev_001") as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_text()
        elapsed = time.monotonic() - started
        assert (closed.value.code, closed.value.reason) == (1013, detail)
        assert elapsed <= 1.0, f"closed after {elapsed:.2f} s"
    finally:
        private_redis.resume()

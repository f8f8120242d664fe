"""The CSV export through ``python -m ev_api``: what an HTTP client sees when Redis is lost in the
middle of an export, and that a client going away stops the reads (a private redis-server)."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator

import pytest
import redis
from _api_helpers import T0, wait_until
from _history_loader import load_history
from _private_redis import PrivateRedis
from test_main import Server

from ev_api.csv_export import EXPORT_CHUNK_ROWS

pytestmark = pytest.mark.faults

PATH = "/api/v1/sensor/ev_001/history.csv"
ROWS = 400_000  # ~20 MB of CSV: more than the socket buffers between server and client hold
T0_MS = int(T0.timestamp() * 1000)


@pytest.fixture
def loaded(private_redis: PrivateRedis, key_prefix: str) -> PrivateRedis:
    with redis.Redis(port=private_redis.port, password=private_redis.password) as direct:
        load_history(direct, key_prefix, "ev_001", "battery", start_ms=T0_MS, count=ROWS)
    return private_redis


@pytest.fixture
def api(loaded: PrivateRedis, key_prefix: str) -> Iterator[Server]:
    server = Server(
        {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(loaded.port),
            "REDIS_KEY_PREFIX": key_prefix,
            "REDIS_SOCKET_TIMEOUT_S": "0.5",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "text",
        }
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _hmget_calls(server: PrivateRedis) -> int:
    with redis.Redis(port=server.port, password=server.password) as direct:
        stats = direct.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


def test_a_complete_export_over_http(api: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    connection.request("GET", PATH)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    body = response.read()  # raises IncompleteRead unless the final chunk arrived
    assert body.endswith(b"\r\n# complete: %d rows\r\n" % ROWS)
    assert body.count(b"\r\n") == ROWS + 2
    connection.close()


def test_redis_lost_mid_export_breaks_the_transfer(api: Server, loaded: PrivateRedis) -> None:
    """No final chunk, no marker: http.client (like curl, exit 18) reports the body incomplete."""
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    connection.request("GET", PATH)
    response = connection.getresponse()
    assert response.status == 200
    head = response.read(64 * 1024)
    assert head.startswith(b"sensor_id,sensor_type,timestamp,value,unit\r\n")
    loaded.kill()
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    body = head + caught.value.partial
    assert b"# complete" not in body
    assert body.count(b"\r\n") < ROWS
    connection.close()
    output = api.stop()
    assert "CSV export of sensor 'ev_001' interrupted after" in output
    assert "Exception in ASGI application" in output  # uvicorn dropped the connection


def test_a_client_going_away_stops_the_reads(api: Server, loaded: PrivateRedis) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # The server fills the socket buffers, then waits for this client to read.
        wait_until(lambda: _hmget_calls(loaded) > 0, what="the export to start")
    # Closed without reading: the export must stop reading Redis, long before its end.
    settled = wait_until(
        lambda: _steady(loaded), timeout=10, what="the reads to stop after the disconnect"
    )
    # A whole export takes one HMGET per chunk of EXPORT_CHUNK_ROWS rows at least.
    whole = ROWS // (EXPORT_CHUNK_ROWS + 2 * 120)
    assert settled < whole // 3, f"{settled} HMGETs; the whole export takes {whole} or more"


def _steady(server: PrivateRedis) -> int | None:
    before = _hmget_calls(server)
    time.sleep(0.3)
    after = _hmget_calls(server)
    return after if after == before else None

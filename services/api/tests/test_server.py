"""``python -m ev_api``'s server: keys out of the logs, bounded heads and WebSocket messages, silent
readers dropped, X-Forwarded-For from trusted proxies only (each through the real process)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import struct
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from _api_helpers import reading, wait_until
from pydantic import ValidationError
from test_main import Server
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ev_api.server import uvicorn_options
from ev_api.settings import Settings
from ev_storage import ReadingWriter, StorageSettings

pytestmark = pytest.mark.faults

WS_PATH = "/api/v1/ws/sensor/ev_001"
TCP_ESTABLISHED = 1


@pytest.fixture
def serve(redis_location: dict[str, Any], key_prefix: str) -> Iterator[Callable[..., Server]]:
    """Start ``python -m ev_api`` on the test Redis and prefix; keyword arguments are env vars."""
    servers: list[Server] = []

    def start(**env: str) -> Server:
        server = Server(
            {
                "REDIS_HOST": redis_location["redis_host"],
                "REDIS_PORT": str(redis_location["redis_port"]),
                "REDIS_DB": str(redis_location["redis_db"]),
                "REDIS_KEY_PREFIX": key_prefix,
                "LOG_LEVEL": "info",
                **env,
            }
        )
        servers.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def ws_url(server: Server, query: str = "") -> str:
    return f"{server.base.replace('http', 'ws')}{WS_PATH}{query}"


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def close_code(url: str, message: str | None = None) -> tuple[int | None, str | None]:
    """Connect, optionally send ``message``, and return the close the server ends with."""
    with connect(url, open_timeout=5, close_timeout=5) as ws:
        try:
            if message is not None:
                ws.send(message)
            while True:
                ws.recv(timeout=5)
        except ConnectionClosed as closed:
            received = closed.rcvd
            return (received.code, received.reason) if received else (None, None)
    raise AssertionError("unreachable")


def test_api_keys_are_masked_in_every_log_line(serve: Callable[..., Server]) -> None:
    right, wrong = f"right-{secrets.token_hex(8)}", f"wrong-{secrets.token_hex(8)}"
    server = serve(API_KEYS=right, API_ACCESS_LOG="true", LOG_FORMAT="json")
    assert close_code(ws_url(server, f"?api_key={wrong}"))[0] == 1008
    assert close_code(ws_url(server, f"?types=battery&%61pi%5Fkey={wrong}"))[0] == 1008
    with connect(ws_url(server, f"?api_key={right}"), open_timeout=5):
        pass
    assert status_of(f"{server.base}/api/v1/sensor/ev_001?api_key={right}") == 401
    output = server.stop()
    assert right not in output
    assert wrong not in output
    lines = [json.loads(line) for line in output.splitlines()]
    handshakes = [line for line in lines if '"WebSocket' in line["message"]]
    assert len(handshakes) == 3, handshakes  # logged, with the key masked
    assert all("key=***" in line["message"] for line in handshakes)


def test_no_websocket_handshake_lines_without_the_access_log(
    serve: Callable[..., Server],
) -> None:
    server = serve(API_KEYS="the-key")
    assert close_code(ws_url(server, "?api_key=the-key-but-wrong"))[0] == 1008
    output = server.stop()
    assert "Application startup complete" in output  # uvicorn's other lines stay
    assert '"WebSocket' not in output
    assert "the-key-but-wrong" not in output


def test_request_heads_over_the_limit_get_431(serve: Callable[..., Server]) -> None:
    server = serve(API_MAX_HEADER_BYTES="8192")
    url = f"{server.base}/api/v1/sensor/ev_001"
    assert status_of(url, {"X-Padding": "x" * 6000}) == 404
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/sensor/ev_001 HTTP/1.1\r\nHost: t\r\nX-Padding: ")
        try:
            for _ in range(64):  # 4 MiB at most; refused after 8 KiB
                sock.sendall(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(4096)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), answer
    assert json.loads(body) == {"detail": "request header fields too large"}
    # The WebSocket handshake is a request head too.
    with pytest.raises(Exception, match="431"):
        connect(ws_url(server), additional_headers={"X-Padding": "x" * 9000}, open_timeout=5)
    # Pipelined requests on one connection are each measured on their own.
    request = b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Padding: " + b"x" * 5000 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request * 3)
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < 3:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk


def test_websocket_messages_over_the_limit_close_1009(serve: Callable[..., Server]) -> None:
    server = serve(WS_MAX_MESSAGE_BYTES="4096")
    assert close_code(ws_url(server), "x" * 5000)[0] == 1009
    # A wrong key is refused before anything the client sends is read.
    keyed = serve(API_KEYS="k", WS_MAX_MESSAGE_BYTES="4096")
    assert close_code(ws_url(keyed, "?api_key=nope"), "x" * 100)[0] == 1008


def handshake(port: int, path: str, receive_buffer: int) -> socket.socket:
    """A WebSocket that never reads after the handshake (and has a small receive window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)  # byte by byte: nothing after the head is read
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def tcp_state(sock: socket.socket) -> int:
    """The socket's TCP state (Linux ``tcp_info.tcpi_state``): 1 while established."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return int(struct.unpack("B", info[:1])[0])


def test_a_websocket_client_that_does_not_read_is_dropped(
    serve: Callable[..., Server], redis_url: str, key_prefix: str
) -> None:
    server = serve(WS_SEND_TIMEOUT_S="1", WS_QUEUE_SIZE="100000", WS_PING_INTERVAL_S="0")
    silent = handshake(server.port, WS_PATH, receive_buffer=4096)
    try:
        with redis.Redis.from_url(redis_url) as direct:
            writer = ReadingWriter(direct, StorageSettings(key_prefix=key_prefix))
            for batch in range(10):  # ~1 MB of live messages, far more than the buffers hold
                writer.store_many([reading(seconds=batch * 1000 + i) for i in range(800)])
        # The send deadline (1 s) and the time the client is given to take the close (1 s):
        # the connection is gone well within this generous bound, not held forever.
        wait_until(lambda: tcp_state(silent) != TCP_ESTABLISHED, timeout=30, what="the drop")
    finally:
        silent.close()
    with connect(ws_url(server), open_timeout=5):
        pass  # the server serves on
    output = server.stop()
    assert "did not read for 1 s" in output
    assert "Traceback" not in output
    assert "RuntimeError" not in output


def test_x_forwarded_for_only_from_trusted_proxies(serve: Callable[..., Server]) -> None:
    url = "/api/v1/sensor/ev_001"

    def statuses(server: Server) -> list[int]:
        return [
            status_of(server.base + url, {"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(4)
        ]

    untrusting = serve(RATE_LIMIT_PER_MINUTE="2")
    assert statuses(untrusting) == [404, 404, 429, 429]  # one budget: the peer's address
    trusting = serve(RATE_LIMIT_PER_MINUTE="2", TRUSTED_PROXIES="127.0.0.1")
    assert statuses(trusting) == [404, 404, 404, 404]  # a budget per forwarded address


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings(trusted_proxies="10.0.0.0/8, 127.0.0.1,::1")
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1")
    assert Settings(trusted_proxies="*").trusted_proxies == ("*",)
    assert Settings().trusted_proxies == ()
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        Settings(trusted_proxies="proxy.example")


def test_uvicorn_options_carry_the_settings() -> None:
    options = uvicorn_options(
        Settings(
            trusted_proxies="10.0.0.0/8",
            api_max_header_bytes=8192,
            ws_max_message_bytes=2048,
            ws_send_timeout_s=3,
        )
    )
    assert (options["proxy_headers"], options["forwarded_allow_ips"]) == (True, ["10.0.0.0/8"])
    assert options["http"].max_head_bytes == 8192
    assert (options["ws_max_size"], options["ws"].send_timeout) == (2048, 3)
    untrusting = uvicorn_options(Settings())
    assert (untrusting["proxy_headers"], untrusting["forwarded_allow_ips"]) == (False, None)

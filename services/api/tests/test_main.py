"""``python -m ev_api``: the process serves on API_HOST:API_PORT with settings from the env."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _api_helpers import reading, wait_until
from _private_redis import PrivateRedis

from ev_storage import ReadingWriter, StorageSettings

pytestmark = pytest.mark.faults


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class Server:
    """``python -m ev_api`` as a process; its output is kept for checks of what it logged."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.output = ""
        full_env = {**os.environ, **env, "API_HOST": "127.0.0.1", "API_PORT": str(self.port)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ev_api"],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                pytest.fail(f"ev_api exited with {self.process.returncode}: {output}")
            try:
                return _get(f"{self.base}/health")[0] == 200
            except OSError:
                return False

        wait_until(ready, timeout=20, what="the API to answer /health")

    def stop(self) -> str:
        """Stop gracefully (SIGINT: uvicorn's shutdown, lifespan included); the output."""
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout and not process.stdout.closed:
                self.output = process.stdout.read().decode()
                process.stdout.close()
        return self.output


@pytest.fixture
def start_server() -> Iterator[Callable[[dict[str, str]], Server]]:
    servers: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = Server(env)
        servers.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def server(
    start_server: Callable[[dict[str, str]], Server],
    redis_location: dict[str, Any],
    key_prefix: str,
) -> str:
    env = {
        "REDIS_HOST": redis_location["redis_host"],
        "REDIS_PORT": str(redis_location["redis_port"]),
        "REDIS_DB": str(redis_location["redis_db"]),
        "REDIS_KEY_PREFIX": key_prefix,
        "API_KEYS": "process-key",
        "LOG_LEVEL": "warning",
    }
    return start_server(env).base


def test_serves_with_settings_from_the_environment(server: str) -> None:
    status, body = _get(f"{server}/health")
    assert status == 200
    assert body["dependencies"]["redis"]["status"] == "ok"
    status, body = _get(f"{server}/api/v1/sensor/ev_001")
    assert (status, body) == (401, {"detail": "missing X-API-Key header"})
    request = urllib.request.Request(
        f"{server}/api/v1/sensor/ev_001", headers={"X-API-Key": "process-key"}
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=2)
    assert missing.value.code == 404
    missing.value.close()


def _get_with_key(url: str, key: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {} if key is None else {"X-API-Key": key}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, _lower(response.headers.items()), json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _lower(error.headers.items()), json.load(error)


def test_auth_rate_limit_and_no_secret_in_the_logs(
    start_server: Callable[[dict[str, str]], Server], tmp_path: Path, key_prefix: str
) -> None:
    password, key = "redis-Pa55-word", "process-key-0123"
    redis_server = PrivateRedis(tmp_path, password=password)
    redis_server.start()
    try:
        with redis.Redis(port=redis_server.port, password=password) as direct:
            ReadingWriter(direct, StorageSettings(key_prefix=key_prefix)).store_many([reading()])
        server = start_server(
            {
                "REDIS_HOST": "127.0.0.1",
                "REDIS_PORT": str(redis_server.port),
                "REDIS_PASSWORD": password,
                "REDIS_KEY_PREFIX": key_prefix,
                "REDIS_SOCKET_TIMEOUT_S": "0.5",
                "API_KEYS": f"other-key,{key}",
                "RATE_LIMIT_PER_MINUTE": "3",
                "LOG_LEVEL": "info",
            }
        )
        url = f"{server.base}/api/v1/sensor/ev_001/battery"
        assert _get_with_key(url, None)[0] == 401
        assert _get_with_key(url, "wrong-key")[0] == 401
        assert [_get_with_key(url, key)[0] for _ in range(3)] == [200, 200, 200]
        status, headers, body = _get_with_key(url, key)
        assert status == 429
        assert 1 <= int(headers["retry-after"]) <= 60
        assert body["detail"].startswith("rate limit exceeded")
        assert _get_with_key(url, "other-key")[0] == 200  # a budget per key
        # Redis gone: the limiter fails open (logged), the route answers 503 (logged).
        redis_server.kill()
        assert _get_with_key(url, "other-key")[0] == 503
        output = server.stop()
    finally:
        redis_server.kill()
    assert "ev-api" in output
    assert "rate limit 3/min" in output
    assert "rate limiter: Redis failed" in output
    # Error logs show the (untrusted) path as a truncated repr.
    assert "GET '/api/v1/sensor/ev_001/battery': Redis unavailable" in output
    assert password not in output
    assert key not in output
    assert "other-key" not in output


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def _logging_env(redis_location: dict[str, Any], key_prefix: str, **extra: str) -> dict[str, str]:
    return {
        "REDIS_HOST": redis_location["redis_host"],
        "REDIS_PORT": str(redis_location["redis_port"]),
        "REDIS_DB": str(redis_location["redis_db"]),
        "REDIS_KEY_PREFIX": key_prefix,
        "LOG_LEVEL": "info",
        **extra,
    }


def test_logs_json_lines_when_not_at_a_terminal_and_serves_metrics(
    start_server: Callable[[dict[str, str]], Server],
    redis_location: dict[str, Any],
    key_prefix: str,
) -> None:
    server = start_server(_logging_env(redis_location, key_prefix, API_ACCESS_LOG="true"))
    assert _get(f"{server.base}/health/live")[0] == 200
    with urllib.request.urlopen(f"{server.base}/metrics", timeout=2) as response:
        metrics = response.read().decode()
    assert 'ev_api_requests_total{method="GET",route="/health/live",status="200"} 1.0' in metrics
    output = server.stop()
    events = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert any(event["logger"].startswith("uvicorn") for event in events)
    access = [event for event in events if event["logger"] == "uvicorn.access"]
    expected = {"method": "GET", "path": "/health/live", "status": 200}.items()
    assert any(expected <= event.items() for event in access)


def test_no_access_log_line_per_request_by_default(
    start_server: Callable[[dict[str, str]], Server],
    redis_location: dict[str, Any],
    key_prefix: str,
) -> None:
    server = start_server(_logging_env(redis_location, key_prefix))
    for _ in range(3):
        assert _get(f"{server.base}/health/live")[0] == 200
    events = [json.loads(line) for line in server.stop().splitlines()]
    assert any(event["logger"].startswith("uvicorn") for event in events)  # it does log
    assert not [event for event in events if event["logger"] == "uvicorn.access"]


def test_invalid_configuration_exits_2_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ev_api.__main__ import main
    from ev_api.deps import get_settings

    monkeypatch.setenv("REDIS_TLS_CA_FILE", __file__)  # without REDIS_TLS: refused
    get_settings.cache_clear()
    try:
        assert main() == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("ev-api: invalid configuration: ")
    assert "REDIS_TLS_* settings need REDIS_TLS=true" in err
    assert "Traceback" not in err


def _raw_exchange(base: str, request: bytes) -> tuple[int, str, bytes]:
    """Send ``request`` as is; the answer's status, content type and body."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    content_type = _lower(headers.items()).get("content-type", "")
    return int(lines[0].split()[1]), content_type, body


_WS_HANDSHAKE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


#: Raw requests, and the status and content type of their answer.
_BOUNDARY_CASES = [
    # Refused by uvicorn before the app sees them: its plain-text 400 (docs/security.md).
    ("G@T /health HTTP/1.1\r\n", (400, "text/plain")),
    ("GET /api/v1/sensor/\u00e9 HTTP/1.1\r\n", (400, "text/plain")),
    ("GET /api/v1/sensor/a\x01b HTTP/1.1\r\n", (400, "text/plain")),
    ("GET /health HTTP/1.1\r\nBad Header: 1\r\n", (400, "text/plain")),
    # A WebSocket handshake without Sec-WebSocket-Key.
    (
        "GET /api/v1/ws/sensor/ev_001 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        (400, "text/plain"),
    ),
    # Everything that reaches the app is answered in JSON with a detail.
    ("GET /api/v1/sensor/%C3%A9 HTTP/1.1\r\n", (422, "application/json")),
    ("GET /api/v1/sensor/%FF HTTP/1.1\r\n", (422, "application/json")),
    ("OPTIONS /health HTTP/1.1\r\n", (405, "application/json")),
    ("GET /nope HTTP/1.1\r\n", (404, "application/json")),
    ("GET /health/nope HTTP/1.1\r\n" + _WS_HANDSHAKE, (404, "application/json")),
]


def test_what_uvicorn_refuses_and_what_the_app_answers(server: str) -> None:
    for request_head, expected in _BOUNDARY_CASES:
        close = "" if "Connection:" in request_head else "Connection: close\r\n"
        request = request_head + f"Host: test\r\nX-API-Key: process-key\r\n{close}\r\n"
        status, content_type, body = _raw_exchange(server, request.encode())
        assert (status, content_type.split(";")[0]) == expected, (request_head, body)
        if expected[1] == "application/json":
            assert "detail" in json.loads(body)

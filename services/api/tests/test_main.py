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
from collections.abc import Iterator
from typing import Any

import pytest
from _api_helpers import wait_until


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


@pytest.fixture
def server(redis_location: dict[str, Any], key_prefix: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "REDIS_HOST": redis_location["redis_host"],
        "REDIS_PORT": str(redis_location["redis_port"]),
        "REDIS_DB": str(redis_location["redis_db"]),
        "REDIS_KEY_PREFIX": key_prefix,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_KEYS": "process-key",
        "LOG_LEVEL": "warning",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ev_api"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"ev_api exited with {process.returncode}: {output}")
        try:
            return _get(f"{base}/health")[0] == 200
        except OSError:
            return False

    try:
        wait_until(ready, timeout=20, what="the API to answer /health")
        yield base
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown (lifespan included)
        try:
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


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

"""End-to-end processes: the real consumer and API on a private vhost and key prefix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Stack
from tests.support import free_port, wait_until


@pytest.fixture
def stack(redis_url: str, amqp_url: str, key_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    redis = urllib.parse.urlsplit(redis_url)
    port = free_port()
    env = {
        **os.environ,
        "RABBITMQ_URLS": amqp_url,
        "REDIS_HOST": redis.hostname or "127.0.0.1",
        "REDIS_PORT": str(redis.port or 6379),
        "REDIS_KEY_PREFIX": key_prefix,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "CONSUMER_BATCH_MS": "20",
        "LOG_LEVEL": "INFO",
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, module in (("consumer", "ev_consumer"), ("api", "ev_api")):
        with (tmp_path / f"{name}.log").open("wb") as log:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", module], env=env, stdout=log, stderr=subprocess.STDOUT
            )
    api_url = f"http://127.0.0.1:{port}"

    def api_healthy() -> bool:
        assert processes["api"].poll() is None, (tmp_path / "api.log").read_text()
        try:
            return httpx.get(f"{api_url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(api_healthy, 30, "the API's /health")
    try:
        yield Stack(api_url, amqp_url, key_prefix, env, processes, tmp_path)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            try:
                code = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"{name} did not stop within 10 s of SIGTERM")
            # uvicorn re-raises the signal after its graceful shutdown, so the API ends with -15.
            clean = {0, -signal.SIGTERM} if name == "api" else {0}
            assert code in clean, f"{name} exited {code}:\n{(tmp_path / f'{name}.log').read_text()}"


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client of the stack's API under /api/v1."""
    with httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=10) as client:
        yield client

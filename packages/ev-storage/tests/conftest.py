"""Fixtures of ev-storage's tests: clients on the real Redis, isolated by the root `key_prefix`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from _storage_helpers import CATALOGUE
from redis.backoff import NoBackoff

from ev_storage import ReadingReader, ReadingWriter, StorageSettings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def settings(key_prefix: str) -> StorageSettings:
    return StorageSettings(key_prefix=key_prefix)


@pytest.fixture
def writer(redis_client: redis.Redis, settings: StorageSettings) -> ReadingWriter:
    return ReadingWriter(redis_client, settings)


@pytest.fixture
async def async_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def reader(async_client: redis.asyncio.Redis, settings: StorageSettings) -> ReadingReader:
    return ReadingReader(async_client, settings, CATALOGUE)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound by us, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def unreachable_client() -> Iterator[redis.Redis]:
    """A client of a closed port that fails at once (no retries with backoff)."""
    client = redis.Redis(
        host="127.0.0.1",
        port=_closed_port(),
        socket_connect_timeout=2,
        retry=redis.retry.Retry(NoBackoff(), 0),
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
async def unreachable_async_client() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis(
        host="127.0.0.1",
        port=_closed_port(),
        socket_connect_timeout=2,
        retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A client of a redis-server of the test's own, for what must not touch the shared one
    (flushing the script cache); the server is killed at the end."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("this test needs redis-server on PATH")
    port = _closed_port()
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(tmp_path)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.02)
        yield client
    finally:
        client.close()
        server.kill()
        server.wait(timeout=10)

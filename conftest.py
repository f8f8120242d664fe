"""Shared test infrastructure: where the real RabbitMQ and Redis are, and how tests stay isolated.

Integration tests never touch shared data: Redis keys live under a per-test prefix that is deleted
afterwards, and each AMQP test gets a private, freshly created virtual host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ev-telemetry")
    group.addoption(
        "--redis-url",
        default=os.environ.get("EV_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis for integration tests (env EV_TEST_REDIS_URL)",
    )
    group.addoption(
        "--amqp-url",
        default=os.environ.get("EV_TEST_AMQP_URL", DEFAULT_AMQP_URL),
        help="RabbitMQ for integration tests; they make private vhosts (env EV_TEST_AMQP_URL)",
    )


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--redis-url"))


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix private to one test; its keys are deleted afterwards (never a FLUSH)."""
    import redis

    prefix = f"evtest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        pytest.fail("rabbitmqctl is needed to create private vhosts for AMQP tests")
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)  # noqa: S603


@pytest.fixture
def amqp_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """The URL of a fresh RabbitMQ vhost private to one test, deleted afterwards."""
    base = urllib.parse.urlsplit(str(pytestconfig.getoption("--amqp-url")))
    vhost = f"evtest-{uuid.uuid4().hex[:12]}"
    user = urllib.parse.unquote(base.username or "guest")
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield urllib.parse.urlunsplit(base._replace(path="/" + urllib.parse.quote(vhost, safe="")))
    finally:
        _rabbitmqctl("delete_vhost", vhost)

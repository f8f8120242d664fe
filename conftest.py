"""Shared test infrastructure: where the real RabbitMQ and Redis are, and how tests stay isolated.

Integration tests never touch shared data: Redis keys live under a per-test prefix that is deleted
afterwards, and each AMQP test gets a private, freshly created virtual host.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
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


class _VhostAdmin:
    """Creates and deletes vhosts with rabbitmqctl, or the management HTTP API where the broker
    runs elsewhere (a CI service container): set EV_TEST_RABBITMQ_API=http://guest:guest@host:15672.

    Each rabbitmqctl call starts an Erlang VM (most of a second), so vhosts are made a batch at a
    time with one ``rabbitmqctl eval`` and all deleted with one more at the end of the session.
    """

    BATCH = 8

    def __init__(self, user: str) -> None:
        self.user = user
        self.api = os.environ.get("EV_TEST_RABBITMQ_API")
        self.ctl = shutil.which("rabbitmqctl")
        if self.api is None and self.ctl is None:
            pytest.fail(
                "AMQP tests need rabbitmqctl or EV_TEST_RABBITMQ_API to make private vhosts"
            )
        self.spare: list[str] = []
        self.created: list[str] = []

    def take(self) -> str:
        """A fresh vhost with full permissions for the test user."""
        if not self.spare:
            batch = [f"evtest-{uuid.uuid4().hex[:12]}" for _ in range(self.BATCH)]
            self._create(batch)
            self.created += batch
            self.spare = batch
        return self.spare.pop()

    def close(self) -> None:
        if not self.created:
            return
        if self.api is not None:
            for vhost in self.created:
                self._http("DELETE", f"/api/vhosts/{vhost}", None)
        else:
            self._eval(f'[rabbit_vhost:delete(V, <<"ev-tests">>) || V <- {_erl(self.created)}]')

    def _create(self, vhosts: list[str]) -> None:
        if self.api is not None:
            for vhost in vhosts:
                self._http("PUT", f"/api/vhosts/{vhost}", {})
                self._http("PUT", f"/api/permissions/{vhost}/{self.user}", PERMIT_ALL)
            return
        self._eval(
            '[begin rabbit_vhost:add(V, <<"ev-tests">>), '
            "rabbit_auth_backend_internal:set_permissions("
            f'<<"{self.user}">>, V, <<".*">>, <<".*">>, <<".*">>, <<"ev-tests">>) end '
            f"|| V <- {_erl(vhosts)}]"
        )

    def _eval(self, expression: str) -> None:
        assert self.ctl is not None
        subprocess.run(  # noqa: S603 - rabbitmqctl with our own expression
            [self.ctl, "-q", "eval", expression + ", ok."],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _http(self, method: str, path: str, body: dict[str, str] | None) -> None:
        assert self.api is not None
        url = urllib.parse.urlsplit(self.api)
        auth = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - test-only URL from the environment
            urllib.parse.urlunsplit(url._replace(netloc=f"{url.hostname}:{url.port}", path=path)),
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass


def _erl(names: list[str]) -> str:
    """An Erlang list of binaries; names are our own hex vhost names, nothing to escape."""
    return "[" + ", ".join(f'<<"{name}">>' for name in names) + "]"


PERMIT_ALL = {"configure": ".*", "write": ".*", "read": ".*"}


@pytest.fixture(scope="session")
def _amqp_base(pytestconfig: pytest.Config) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(str(pytestconfig.getoption("--amqp-url")))


@pytest.fixture(scope="session")
def _vhosts(_amqp_base: urllib.parse.SplitResult) -> Iterator[_VhostAdmin]:
    admin = _VhostAdmin(urllib.parse.unquote(_amqp_base.username or "guest"))
    yield admin
    admin.close()


@pytest.fixture
def amqp_url(_amqp_base: urllib.parse.SplitResult, _vhosts: _VhostAdmin) -> str:
    """The URL of a fresh RabbitMQ vhost private to one test (deleted at the end of the session)."""
    vhost = _vhosts.take()
    return urllib.parse.urlunsplit(
        _amqp_base._replace(path="/" + urllib.parse.quote(vhost, safe=""))
    )

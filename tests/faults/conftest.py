"""Fixtures of the fault tests: consumers as processes, a private redis-server, the live counter,
and the session's figures written to ``.reports/faults.json``."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.broker import BrokerAdmin
from tests.faults.live import LiveCounter
from tests.faults.report import FaultReport
from tests.faults.scenario import Scenario
from tests.faults.support import Consumers, RedisServer, consumer_env, reap

FAULTS_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is a fault test (`nox -s faults` selects by the marker)."""
    for item in items:
        if FAULTS_DIR in item.path.parents:
            item.add_marker(pytest.mark.faults)


# The API's schemathesis test, which this session runs too (noxfile's API_FAULT_TESTS): 1,000
# examples per operation here, 30 in the API's own quick run. Read when the test runs.
os.environ.setdefault("API_FUZZ_EXAMPLES", "1000")


@pytest.fixture(autouse=True)
def _reap_processes() -> Iterator[None]:
    """No process of a test outlives it, whatever happened."""
    yield
    reap()


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    report = FaultReport()
    yield report
    report.write()


@pytest.fixture(scope="session")
def broker_admin() -> BrokerAdmin:
    return BrokerAdmin()


@pytest.fixture
def vhost(amqp_url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(amqp_url).path[1:])


@pytest.fixture
def consumers(
    amqp_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> Iterator[Consumers]:
    """Consumers on this test's vhost and key prefix (override the environment per start)."""
    fleet = Consumers(tmp_path, consumer_env(amqp_url, redis_url, key_prefix))
    yield fleet
    fleet.kill_all()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.close()


@pytest.fixture
def scenario(
    fault_report: FaultReport, consumers: Consumers, amqp_url: str, key_prefix: str
) -> Iterator[Callable[..., Scenario]]:
    """``scenario(name, redis_url)``: a :class:`Scenario` whose live counter listens on
    ``redis_url`` (the Redis the consumers write to), closed after the test. ``prefix``
    overrides the test's (a sub-prefix of it, so that its keys are deleted too)."""
    opened: list[LiveCounter] = []

    def make(name: str, redis_url: str, prefix: str = key_prefix) -> Scenario:
        live = LiveCounter(redis_url, prefix).__enter__()
        opened.append(live)
        return Scenario(
            name,
            fault_report,
            consumers,
            live,
            redis_url=redis_url,
            key_prefix=prefix,
            amqp_url=amqp_url,
        )

    yield make
    for live in opened:
        live.__exit__(None, None, None)

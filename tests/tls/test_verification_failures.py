"""A certificate that does not verify ends each service at start-up with status 2 and one line
naming the reason: for Redis in the consumer and the API, for RabbitMQ in the consumer and the
simulator. Never a traceback, never a retry loop, never plain text instead.

These tests fail when verification is turned off in the code under test: the service then
connects and keeps running, and the wait for its exit times out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import free_port
from tests.tls.conftest import Tls
from tests.tls.servers import Service

pytestmark = pytest.mark.integration

#: Each failure: which server certificate, whether the client trusts the unrelated CA instead,
#: and what OpenSSL's reason must say.
CASES = {
    "wrong_ca": ("good", True, r"unable to get local issuer certificate|self-signed certificate"),
    "expired": ("expired", False, r"certificate has expired"),
    "wrong_host": ("wrong_host", False, r"mismatch, certificate is not valid for '127\.0\.0\.1'"),
}
#: Long enough for a start-up; a service that verifies nothing runs on and fails the test.
EXIT_TIMEOUT = 30


def _ca(tls: Tls, unrelated: bool) -> Path:
    return tls.certs.other_ca.cert if unrelated else tls.certs.ca.cert


def _assert_one_line(service: Service, program: str, what: str, reason: str) -> None:
    stderr = service.stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{program}: {what}: certificate verify failed: "), stderr
    assert re.search(reason, lines[0]), stderr
    assert re.search(r"\(127\.0\.0\.1:\d+\)$", lines[0]), stderr


@pytest.mark.parametrize("case", CASES)
def test_consumer_refuses_a_redis_certificate(
    tls: Tls, start: Callable[..., Service], case: str
) -> None:
    server, unrelated, reason = CASES[case]
    env = {"RABBITMQ_URLS": tls.amqp_url, **tls.redis_env(server, _ca(tls, unrelated))}
    consumer = start("ev_consumer", env)
    assert consumer.wait(EXIT_TIMEOUT) == 2, consumer.stderr
    _assert_one_line(consumer, "ev-consumer", "Redis TLS", reason)


@pytest.mark.parametrize("case", CASES)
def test_api_refuses_a_redis_certificate(
    tls: Tls, start: Callable[..., Service], case: str
) -> None:
    server, unrelated, reason = CASES[case]
    env = {**tls.redis_env(server, _ca(tls, unrelated)), "API_PORT": str(free_port())}
    api = start("ev_api", env)
    assert api.wait(EXIT_TIMEOUT) == 2, api.stderr
    _assert_one_line(api, "ev-api", "Redis TLS", reason)


@pytest.mark.parametrize("case", CASES)
def test_consumer_refuses_a_broker_certificate(
    tls: Tls, start: Callable[..., Service], case: str
) -> None:
    server, unrelated, reason = CASES[case]
    consumer = start(
        "ev_consumer", {**tls.redis_env(), **tls.amqp_env(server, _ca(tls, unrelated))}
    )
    assert consumer.wait(EXIT_TIMEOUT) == 2, consumer.stderr
    _assert_one_line(consumer, "ev-consumer", "RabbitMQ TLS", reason)


@pytest.mark.parametrize("case", CASES)
def test_simulator_refuses_a_broker_certificate(
    tls: Tls, start: Callable[..., Service], case: str
) -> None:
    server, unrelated, reason = CASES[case]
    simulator = start(
        "ev_simulator",
        tls.amqp_env(server, _ca(tls, unrelated)),
        # No --declare-topology: the publisher's own connection (not a blocking one) is checked.
        *("--vehicles", "1", "--count", "1"),
    )
    assert simulator.wait(EXIT_TIMEOUT) == 2, simulator.stderr
    _assert_one_line(simulator, "ev-simulator", "RabbitMQ TLS", reason)
    assert simulator.stdout == ""  # no report: nothing was published

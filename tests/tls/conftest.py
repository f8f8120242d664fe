"""TLS with real handshakes: throwaway certificates, private TLS Redis servers, TLS terminators in
front of the shared RabbitMQ, and the services as processes configured for ``rediss``/``amqps``.

Isolation: each test's AMQP traffic goes to its own private vhost (the root conftest's
``amqp_url``), its Redis data to private redis-servers under a key prefix of its own.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tls.certs import Certificates, make_certificates
from tests.tls.servers import Service, TlsRedis
from tests.tls.terminator import terminators


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def tls_redis(
    certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, int]]:
    """Ports of private TLS redis-servers: ``good``, ``expired`` and ``wrong_host`` (by the
    certificate each presents); stopped at the end of the session, pass or fail."""
    servers: dict[str, TlsRedis] = {}
    try:
        for name, pair in (
            ("good", certs.server),
            ("expired", certs.expired),
            ("wrong_host", certs.wrong_host),
        ):
            servers[name] = TlsRedis(
                tmp_path_factory.mktemp(f"redis-{name}"), pair, certs.ca.cert, certs.client
            )
        yield {name: server.port for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.close()


@pytest.fixture(scope="session")
def amqp_tls_ports(
    certs: Certificates, _amqp_base: urllib.parse.SplitResult
) -> Iterator[dict[str, int]]:
    """Ports of TLS terminators in front of the shared broker, requiring a client certificate:
    ``good``, ``expired`` and ``wrong_host`` (by the certificate each presents)."""
    backend = (_amqp_base.hostname or "127.0.0.1", _amqp_base.port or 5672)
    with terminators(backend) as running:
        yield {
            "good": running.listen(certs.server, certs.ca.cert),
            "expired": running.listen(certs.expired, certs.ca.cert),
            "wrong_host": running.listen(certs.wrong_host, certs.ca.cert),
        }


@dataclass
class Tls:
    """What a test needs to configure the services: certificates, ports, its vhost and prefix."""

    certs: Certificates
    redis_ports: dict[str, int]
    amqp_ports: dict[str, int]
    amqp_url: str  # the test's private vhost on the shared broker, in plain AMQP (for checks)
    key_prefix: str
    logs: Path

    def amqps_url(self, server: str = "good") -> str:
        """The test's vhost through the terminator presenting ``server``'s certificate."""
        parts = urllib.parse.urlsplit(self.amqp_url)
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{self.amqp_ports[server]}"
        return urllib.parse.urlunsplit(parts._replace(scheme="amqps", netloc=netloc))

    def amqp_env(self, server: str = "good", ca: Path | None = None) -> dict[str, str]:
        """RABBITMQ_* for amqps to ``server``, trusting ``ca`` (default: the right CA)."""
        return {
            "RABBITMQ_URLS": self.amqps_url(server),
            "RABBITMQ_TLS_CA_FILE": str(ca or self.certs.ca.cert),
            "RABBITMQ_TLS_CERT_FILE": str(self.certs.client.cert),
            "RABBITMQ_TLS_KEY_FILE": str(self.certs.client.key),
        }

    def redis_env(self, server: str = "good", ca: Path | None = None) -> dict[str, str]:
        """REDIS_* for TLS to the private Redis presenting ``server``'s certificate."""
        return {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.redis_ports[server]),
            "REDIS_KEY_PREFIX": self.key_prefix,
            "REDIS_TLS": "true",
            "REDIS_TLS_CA_FILE": str(ca or self.certs.ca.cert),
            "REDIS_TLS_CERT_FILE": str(self.certs.client.cert),
            "REDIS_TLS_KEY_FILE": str(self.certs.client.key),
        }


@pytest.fixture
def tls(
    certs: Certificates,
    tls_redis: dict[str, int],
    amqp_tls_ports: dict[str, int],
    amqp_url: str,
    tmp_path: Path,
) -> Tls:
    return Tls(
        certs=certs,
        redis_ports=tls_redis,
        amqp_ports=amqp_tls_ports,
        amqp_url=amqp_url,
        key_prefix=f"evtls:{uuid.uuid4().hex[:12]}:",
        logs=tmp_path,
    )


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start ``python -m <module> [args]`` with the environment plus ``env``; every process is
    stopped at the end of the test, pass or fail. Metrics and heartbeats stay private."""
    started: list[Service] = []

    def run(module: str, env: dict[str, str], *args: str) -> Service:
        full = {
            **os.environ,
            "METRICS_PORT": "0",
            "CONSUMER_HEARTBEAT_FILE": str(tmp_path / f"heartbeat-{len(started)}"),
            "CONSUMER_BATCH_MS": "20",
            "LOG_LEVEL": "INFO",
            **env,
        }
        service = Service(module, list(args), full, tmp_path)
        started.append(service)
        return service

    try:
        yield run
    finally:
        for service in started:
            service.close()

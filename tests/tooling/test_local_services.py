"""`nox -s up` on a machine where Redis or RabbitMQ is installed but stopped, or missing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from local_services import Action, Server, decide, ensure, explanation, servers, start_redis

REDIS = Server("Redis", "127.0.0.1", 6399, "redis-server", "redis-server")
REMOTE = Server("Redis", "redis.internal", 6379, "redis-server", "redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


@pytest.mark.parametrize(
    ("server", "reachable", "installed", "action"),
    [
        (REDIS, True, False, Action.USE),
        (REDIS, False, True, Action.START),
        (REDIS, False, False, Action.EXPLAIN),
        (REMOTE, False, True, Action.EXPLAIN),  # never start something for another host
        (REMOTE, True, False, Action.USE),
    ],
)
def test_decide(server: Server, reachable: bool, installed: bool, action: Action) -> None:
    assert decide(server, reachable, installed) is action


def test_missing_executable_names_the_debian_package_and_compose() -> None:
    line = explanation(REDIS, "Connection refused", installed=False)
    assert "\n" not in line
    assert "sudo apt-get install redis-server" in line
    assert "docker compose up --build" in line
    assert "127.0.0.1:6399 (Connection refused)" in line


def test_servers_follow_the_services_variables() -> None:
    redis, rabbitmq = servers({"REDIS_HOST": "::1", "REDIS_PORT": "7000", "RABBITMQ_PORT": "5673"})
    assert (redis.host, redis.port, redis.local) == ("::1", 7000, True)
    assert (rabbitmq.name, rabbitmq.port, rabbitmq.executable) == (
        "RabbitMQ",
        5673,
        "rabbitmq-server",
    )


def test_a_stopped_local_redis_is_started_and_stopped_again(tmp_path: Path) -> None:
    port = _free_port()
    server = Server("Redis", "127.0.0.1", port, "redis-server", "redis-server")
    handle = start_redis(server, tmp_path / "redis")
    assert handle is not None, (tmp_path / "redis" / "redis.log").read_text()
    try:
        assert _ping(port) == b"+PONG\r\n"
    finally:
        handle.stop()
    with pytest.raises(ConnectionRefusedError):
        _ping(port)


def test_ensure_starts_only_what_is_missing(tmp_path: Path) -> None:
    port = _free_port()
    # A RabbitMQ "already running" (a listening socket) and a Redis to start on a free port.
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen()
        env = {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(port),
            "RABBITMQ_HOST": "127.0.0.1",
            "RABBITMQ_PORT": str(broker.getsockname()[1]),
        }
        started, problems = ensure(env, tmp_path)
    try:
        assert problems == []
        assert [handle.server.name for handle in started] == ["Redis"]
        assert _ping(port) == b"+PONG\r\n"
    finally:
        for handle in started:
            handle.stop()

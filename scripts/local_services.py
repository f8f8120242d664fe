"""Redis and RabbitMQ for `nox -s up`: used when they answer, started when installed but stopped,
explained in one line when missing.

What this starts, it stops: Redis as a child process without persistence (a demo's data), the
machine's RabbitMQ node as `.ci/run` starts it (`rabbitmq-server -detached`, then
`rabbitmqctl stop`). Only addresses of this machine are ever started; a remote server that does
not answer is reported, never worked around.
"""

from __future__ import annotations

import enum
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
COMPOSE_HINT = "or run the whole stack in containers with `docker compose up --build`"


class Action(enum.Enum):
    """What to do about one server the stack needs."""

    USE = "use"  # it answers
    START = "start"  # local, installed, not running
    EXPLAIN = "explain"  # cannot be started from here: say why and how to get it


@dataclass(frozen=True)
class Server:
    """A server the stack needs, where it is expected, and how to get it on Debian or Ubuntu."""

    name: str
    host: str
    port: int
    executable: str
    debian_package: str

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS


def servers(env: Mapping[str, str]) -> list[Server]:
    """Redis and RabbitMQ at the addresses the services will use (the same variables)."""
    return [
        Server(
            "Redis",
            env.get("REDIS_HOST", "localhost"),
            int(env.get("REDIS_PORT", "6379")),
            "redis-server",
            "redis-server",
        ),
        Server(
            "RabbitMQ",
            env.get("RABBITMQ_HOST", "localhost"),
            int(env.get("RABBITMQ_PORT", "5672")),
            "rabbitmq-server",
            "rabbitmq-server",
        ),
    ]


def unreachable(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None if a TCP connection succeeds, else the reason it did not."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def decide(server: Server, reachable: bool, installed: bool) -> Action:
    """Use a server that answers; start a local one that is installed; explain the rest."""
    if reachable:
        return Action.USE
    if server.local and installed:
        return Action.START
    return Action.EXPLAIN


def explanation(server: Server, problem: str, installed: bool) -> str:
    """One line: what is wrong and the command that fixes it."""
    where = f"{server.name} is not reachable at {server.host}:{server.port} ({problem})"
    if not server.local:
        return f"{where}: start it there, or point the settings at a running one."
    if not installed:
        return (
            f"{where} and `{server.executable}` is not installed: "
            f"`sudo apt-get install {server.debian_package}` (Debian, Ubuntu), {COMPOSE_HINT}."
        )
    return f"{where}, and starting it failed: see its log above, {COMPOSE_HINT}."


@dataclass
class Started:
    """A server this script started, and how to stop it again."""

    server: Server
    stop: Callable[[], None]


def _wait(server: Server, deadline_s: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and alive():
        if unreachable(server.host, server.port, timeout=0.5) is None:
            return True
        time.sleep(0.2)
    return False


def start_redis(server: Server, workdir: Path, deadline_s: float = 15.0) -> Started | None:
    """A private ``redis-server`` on the server's port, without persistence; None if it failed."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            server.executable,
            "--port",
            str(server.port),
            "--bind",
            "127.0.0.1",
            "-::1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(workdir / "redis.log"),
        ],
        start_new_session=True,  # the terminal's Ctrl-C is ours to handle, in order
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    if _wait(server, deadline_s, lambda: process.poll() is None):
        return Started(server, stop)
    stop()
    return None


def start_rabbitmq(server: Server, deadline_s: float = 120.0) -> Started | None:
    """This machine's RabbitMQ node, as `.ci/run` starts it; None if it did not come up."""
    ctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
    env = None if server.port == 5672 else {**os.environ, "RABBITMQ_NODE_PORT": str(server.port)}
    subprocess.run([server.executable, "-detached"], env=env, check=False)

    def stop() -> None:
        subprocess.run([ctl, "stop"], check=False, capture_output=True, timeout=60)

    deadline = time.monotonic() + deadline_s
    # Right after the start, await_startup can fail at once (code 69): the node is not up yet.
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [ctl, "-q", "await_startup", "--timeout", "10"], check=False, capture_output=True
        )
        if ready.returncode == 0 and _wait(server, 10, lambda: True):
            return Started(server, stop)
        time.sleep(2)
    stop()
    return None


STARTERS: dict[str, Callable[[Server, Path], Started | None]] = {
    "Redis": start_redis,
    "RabbitMQ": lambda server, _workdir: start_rabbitmq(server),
}


def ensure(env: Mapping[str, str], workdir: Path) -> tuple[list[Started], list[str]]:
    """Start what is missing and can be started here: what was started, and one line per server
    that is still missing (empty when the stack can run)."""
    started: list[Started] = []
    problems: list[str] = []
    for server in servers(env):
        problem = unreachable(server.host, server.port)
        installed = shutil.which(server.executable) is not None
        action = decide(server, problem is None, installed)
        if action is Action.USE:
            continue
        if action is Action.START:
            print(f"{server.name} is not running on {server.host}:{server.port}: starting it")
            handle = STARTERS[server.name](server, workdir / server.name.lower())
            if handle is not None:
                started.append(handle)
                continue
        problems.append(explanation(server, problem or "not answering", installed))
    return started, problems

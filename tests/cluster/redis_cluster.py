"""A private Redis Cluster of three masters on free loopback ports, for the cluster tests.

Each node is a ``redis-server --cluster-enabled yes`` without persistence in its own folder of a
temporary directory; ``redis-cli --cluster create`` assigns the 16384 slots over the three
(no replicas), and the cluster is ready once every node reports ``cluster_state:ok``. ``close()``
kills the servers and removes the directory, whatever state they are in.
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from tests.support import free_port, poll_until, wait_until

MASTERS = 3
#: A cluster node talks to the others on its client port plus this (the cluster bus).
BUS_OFFSET = 10000
#: Generous: the nodes agree on the slot map through the cluster bus, checked every 100 ms.
READY_TIMEOUT_S = 30.0


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"the cluster tests need {name} on PATH (Debian: redis-server, redis-tools)"
        )
    return path


def _port_with_free_bus() -> int:
    """A free loopback port whose cluster bus port is free too."""
    while True:
        port = free_port()
        if port + BUS_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_OFFSET))
            except OSError:
                continue
        return port


class PrivateRedisCluster:
    """Three cluster-enabled ``redis-server`` processes forming one cluster; a context manager.

    ``ports`` are the nodes' client ports (each with a free cluster bus port too); ``seed`` is
    where a client starts discovery.
    """

    def __init__(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="ev-redis-cluster-"))
        self._processes: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    @property
    def seed(self) -> tuple[str, int]:
        return "127.0.0.1", self.ports[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def node_client(self, port: int) -> redis.Redis:
        """A plain client of one node (the caller closes it)."""
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def close(self) -> None:
        """Kill every node and remove the temporary directory."""
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        self._processes.clear()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def _start(self) -> None:
        server = _tool("redis-server")
        while len(self.ports) < MASTERS:
            port = _port_with_free_bus()
            if port not in self.ports:
                self.ports.append(port)
        for port in self.ports:
            folder = self._workdir / str(port)
            folder.mkdir()
            argv = [
                server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", str(folder / "redis.log"),
            ]  # fmt: skip
            self._processes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        for port in self.ports:
            wait_until(functools.partial(self._answers, port), 10, f"redis-server on {port}")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        create = [_tool("redis-cli"), "--cluster", "create", *nodes, "--cluster-replicas", "0"]
        subprocess.run([*create, "--cluster-yes"], check=True, capture_output=True, timeout=60)
        if not poll_until(self._ready, READY_TIMEOUT_S, interval=0.1):
            raise RuntimeError(f"the private Redis Cluster on {self.ports} never became ready")

    def _answers(self, port: int) -> bool:
        for process in self._processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"a redis-server of the private cluster exited: {process.args!r}"
                )
        with self.node_client(port) as client:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

    def _ready(self) -> bool:
        """Every node sees every slot assigned and the cluster state ok."""
        for port in self.ports:
            with self.node_client(port) as client:
                info = client.cluster("INFO")
            if (
                info.get("cluster_state") != "ok"
                or int(info.get("cluster_known_nodes", 0)) < MASTERS
            ):
                return False
        return True

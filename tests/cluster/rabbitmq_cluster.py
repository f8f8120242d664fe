"""A private three-node RabbitMQ cluster on loopback, for the broker fail-over test.

Each node is a ``rabbitmq-server`` in the foreground, a child of the test in its own process
group, with its own node name (``evtest-<hex>-<n>@localhost``), AMQP and distribution ports, data
and log folders, an empty plugin list (no management or Prometheus listener to collide with a
shared broker's) and a private Erlang cookie (``HOME`` is a folder of the temporary directory):
nothing of a broker already running here is read, and ``rabbitmqctl`` only ever names our nodes.
Nodes 2 and 3 join node 1 with ``rabbitmqctl join_cluster``. ``kill(node)`` is ``kill -9`` of
every process of the node (its process group: the script and the VM; and ``erl_child_setup`` and
``inet_gethost``, which start sessions of their own); ``restart(node)`` starts it again on the
same name and data, so it rejoins. ``close()`` kills every node and removes the directory,
whatever state they are in.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support import free_port, poll_until

NODES = 3
#: Debian and RPM packages put wrappers on the PATH that re-run the tools as the ``rabbitmq``
#: user with its own HOME (its cookie, its config): the real scripts are called directly.
SCRIPT_DIRS = (Path("/usr/lib/rabbitmq/bin"),)
#: One scheduler and few async threads per VM: three brokers share two cores with the clients.
ERL_ARGS = "+S 1:1 +A 8 -kernel inet_dist_use_interface {127,0,0,1}"
#: A node boots in a few seconds; allow for a loaded machine.
START_TIMEOUT_S = 90.0
CTL_TIMEOUT_S = 120.0


def tool(name: str) -> str:
    """The path of a RabbitMQ command-line tool, preferring the unwrapped scripts."""
    for folder in SCRIPT_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the RabbitMQ cluster test needs {name} (RabbitMQ 3.10 or later)")
    return path


@dataclass(slots=True)
class Node:
    """One broker of the cluster: its name, ports and process (None while it is down)."""

    number: int
    name: str
    port: int
    dist_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"


class PrivateRabbitCluster:
    """Three ``rabbitmq-server`` nodes clustered together; a context manager.

    ``nodes`` are in joining order (node 1 is the one the others joined); ``urls`` are their AMQP
    URLs for ``RABBITMQ_URLS``.
    """

    def __init__(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="ev-rabbit-cluster-"))
        self._home = self._workdir / "home"
        self.nodes: list[Node] = []
        began = time.monotonic()
        try:
            self._prepare()
            self._start()
            #: Seconds from nothing to three running, clustered nodes.
            self.startup_s = time.monotonic() - began
        except BaseException:
            self.close()
            raise

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def node(self, name: str) -> Node:
        """The node called ``name`` (as ``rabbitmqctl`` prints it)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def ctl(self, node: Node, *args: str, tool_name: str = "rabbitmqctl") -> str:
        """Run ``rabbitmqctl`` (or ``rabbitmq-queues``, ...) against ``node``; its output."""
        result = subprocess.run(
            [tool(tool_name), "-n", node.name, *args],
            env=self._env(node),
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool_name} {' '.join(args)} on {node.name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def kill(self, node: Node) -> None:
        """``kill -9`` the node's whole process group: no goodbye to its peers or clients."""
        process = node.process
        if process is None:
            return
        # erl_child_setup and inet_gethost start sessions of their own: they are found by
        # parentage, before the kill orphans them (they would exit by themselves, a bit later).
        helpers = _descendants(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in helpers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
        node.process = None

    def restart(self, node: Node) -> None:
        """Start a killed node again (same name and data: it rejoins); wait until it runs."""
        self._launch(node)
        self._await_startup(node)

    def queue_leaders(self, via: Node) -> dict[str, tuple[str, list[str]]]:
        """Each queue of the default vhost: its leader and its members, as ``via`` sees them."""
        out = self.ctl(via, "list_queues", "name", "leader", "members", "--formatter", "json", "-q")
        return {row["name"]: (row["leader"], sorted(row["members"])) for row in json.loads(out)}

    def running_nodes(self, via: Node) -> list[str]:
        """The cluster's running nodes as ``via`` sees them."""
        out = self.ctl(via, "eval", "lists:sort(rabbit_nodes:all_running()).", "-q")
        return sorted(part.strip(" '\n[]") for part in out.split(",") if part.strip(" \n[]"))

    def save_logs(self, folder: Path) -> None:
        """Copy every node's logs into ``folder`` (before ``close`` removes them)."""
        for node in self.nodes:
            target = folder / node.name
            shutil.copytree(node.folder / "log", target, dirs_exist_ok=True)
            if (node.folder / "console.log").exists():
                shutil.copy(node.folder / "console.log", target)

    def close(self) -> None:
        """Kill every node and remove the temporary directory."""
        for node in self.nodes:
            self.kill(node)
        shutil.rmtree(self._workdir, ignore_errors=True)

    # internals

    def _prepare(self) -> None:
        self._home.mkdir()
        cookie = self._home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        (self._workdir / "enabled_plugins").write_text("[].\n")
        (self._workdir / "rabbitmq-env.conf").write_text("")  # not the system's NODENAME
        tag = secrets.token_hex(4)
        used: set[int] = set()
        for number in range(1, NODES + 1):
            port, dist_port = self._free(used), self._free(used)
            folder = self._workdir / f"node{number}"
            folder.mkdir()
            (folder / "rabbitmq.conf").write_text(
                f"listeners.tcp.1 = 127.0.0.1:{port}\n"
                # The default 50 MB free-disk alarm is fine; a tiny tmpfs is not the test's topic.
                "disk_free_limit.absolute = 1MB\n"
            )
            node = Node(number, f"evtest-{tag}-{number}@localhost", port, dist_port, folder)
            self.nodes.append(node)

    @staticmethod
    def _free(used: set[int]) -> int:
        while (port := free_port()) in used:
            pass
        used.add(port)
        return port

    def _env(self, node: Node) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        folder = node.folder
        env |= {
            "HOME": str(self._home),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(self._workdir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._workdir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_MNESIA_DIR": str(folder / "mnesia" / node.name),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
        }
        return env

    def _launch(self, node: Node) -> None:
        with (node.folder / "console.log").open("ab") as out:
            node.process = subprocess.Popen(
                [tool("rabbitmq-server")],
                env=self._env(node),
                cwd=node.folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for kill()
            )

    def _await_startup(self, node: Node) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        process = node.process
        assert process is not None

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{node.name} exited: {self._console(node)}")
            return self._answers(node, deadline - time.monotonic())

        if not poll_until(up, START_TIMEOUT_S, interval=0.5):
            raise RuntimeError(f"{node.name} did not start: {self._console(node)}")

    def _answers(self, node: Node, timeout: float) -> bool:
        result = subprocess.run(
            [tool("rabbitmqctl"), "-n", node.name, "await_startup", "--timeout", "30"],
            env=self._env(node),
            capture_output=True,
            timeout=max(timeout, 1.0) + 15,
            check=False,
        )
        return result.returncode == 0

    def _console(self, node: Node) -> str:
        path = node.folder / "console.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no output)"

    def _start(self) -> None:
        for node in self.nodes:
            self._launch(node)
        for node in self.nodes:
            self._await_startup(node)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "reset")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        names = sorted(node.name for node in self.nodes)
        if not poll_until(lambda: self.running_nodes(first) == names, 60, interval=0.5):
            raise RuntimeError(f"the private RabbitMQ cluster never had {names} running")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, hence rpartition.
        fields = stat.rpartition(")")[2].split()
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found

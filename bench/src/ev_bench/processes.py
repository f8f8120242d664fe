"""The services under test as child processes: started with an environment, logged to a file,
pinned to a core when asked, stopped with SIGTERM (as an operator would), killed only if stuck.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from ev_bench.errors import BenchError

_STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    """``argv`` run on one core with taskset, when there is a core to give and taskset exists."""
    if core is None or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", str(core), *argv]


def cores_for_split() -> tuple[int, int] | None:
    """(server core, load-generator core) when this process may use at least two cores."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    if len(allowed) < 2 or shutil.which("taskset") is None:
        return None
    return allowed[0], allowed[1]


def service_env(
    *,
    amqp_url: str | None,
    redis_url: str,
    key_prefix: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The services' environment variables (the README's names) for this run's sandbox."""
    parts = urllib.parse.urlsplit(redis_url)
    env = {
        **os.environ,
        "REDIS_HOST": parts.hostname or "127.0.0.1",
        "REDIS_PORT": str(parts.port or 6379),
        "REDIS_DB": (parts.path or "/0").lstrip("/") or "0",
        "REDIS_KEY_PREFIX": key_prefix,
    }
    if parts.password:
        env["REDIS_PASSWORD"] = urllib.parse.unquote(parts.password)
    if amqp_url is not None:
        env["RABBITMQ_URLS"] = amqp_url
    env.update(extra or {})
    return env


class Service:
    """One child process; a context manager that stops it on exit."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._argv = list(argv)
        self._env = dict(env)
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def module(
        cls,
        name: str,
        module: str,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        core: int | None = None,
        args: Sequence[str] = (),
    ) -> Service:
        """``python -m module`` with this interpreter (the same venv as the harness)."""
        return cls(name, pinned([sys.executable, "-m", module, *args], core), env, log_dir)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The service's own pid (taskset execs it, so the pid stays the same)."""
        if self._process is None:
            raise BenchError(f"{self.name} is not running")
        return self._process.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own fixed argv
                self._argv, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise BenchError(
                f"{self.name} exited with code {self._process.returncode}: {self.tail()}"
            )

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; its exit code."""
        if self._process is None:
            raise BenchError(f"{self.name} is not running")
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{self.name} still running after {timeout:g}s") from None

    def stop(self) -> int | None:
        """SIGTERM, wait, kill if stuck; the exit code (None if never started)."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, url: str, *, timeout: float = 60.0) -> None:
        """Poll ``url`` until it answers 200, or fail with the log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer {url} within {timeout:g}s: {self.tail()}")

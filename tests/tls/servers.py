"""Private TLS servers and the services under test as processes, every one bounded and reaped."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import free_port, poll_until
from tests.tls.certs import Pair


class TlsRedis:
    """A private ``redis-server`` speaking only TLS (``--port 0``), requiring a client
    certificate signed by ``client_ca``, presenting ``server``; never the shared Redis."""

    def __init__(self, workdir: Path, server: Pair, client_ca: Path, client: Pair) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.skip("redis-server is not installed")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.client = client
        self.log = workdir / "redis.log"
        argv = [
            executable, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(server.cert), "--tls-key-file", str(server.key),
            "--tls-ca-cert-file", str(client_ca), "--tls-auth-clients", "yes",
            "--save", "", "--appendonly", "no", "--dir", str(workdir),
            "--logfile", str(self.log),
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not poll_until(self._answers, 15):
            self.close()
            raise RuntimeError(
                f"redis-server with TLS on {self.port} did not start: {self._tail()}"
            )

    def _answers(self) -> bool:
        """PING over TLS. Readiness only: this probe skips verification (it also has to reach
        the servers with bad certificates); the services under test never do."""
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {self._tail()}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(self.client.cert, self.client.key)
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw,
                context.wrap_socket(raw) as sock,
            ):
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith((b"+PONG", b"-"))
        except OSError:
            return False

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


class Service:
    """``python -m <module>`` with its own stdout and stderr files, killed by :meth:`close`."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = module
        self.stdout_path = logs / f"{module}-{time.monotonic_ns()}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args], env=env, stdout=out, stderr=err
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        """The exit status; fails the test (after killing it) if it runs longer."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(
                f"{self.name} still ran after {timeout:g} s; stderr:\n{self.stderr[-3000:]}"
            ) from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

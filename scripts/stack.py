"""Run the whole stack on this machine: consumer, API and a small simulated fleet, until Ctrl-C.

Used by `nox -s up`. Checks RabbitMQ and Redis first and says in one line how to start whichever
is missing; then starts each service as a child process and stops them all cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

HINTS = {
    "Redis": "start it with `redis-server --daemonize yes` (or "
    "`docker run -d -p 6379:6379 redis:7.2`)",
    "RabbitMQ": "start it with `rabbitmq-server -detached` (or "
    "`docker run -d -p 5672:5672 rabbitmq:3.13-management`)",
}


def reachable(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None if a TCP connection succeeds, else the reason it did not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def check_dependencies(env: Mapping[str, str]) -> bool:
    ok = True
    for name, host_var, port_var, default_port in (
        ("Redis", "REDIS_HOST", "REDIS_PORT", 6379),
        ("RabbitMQ", "RABBITMQ_HOST", "RABBITMQ_PORT", 5672),
    ):
        host, port = env.get(host_var, "localhost"), int(env.get(port_var, default_port))
        problem = reachable(host, port)
        if problem is not None:
            print(f"{name} is not reachable at {host}:{port} ({problem}): {HINTS[name]}.")
            ok = False
    return ok


def wait_for_health(url: str, process: subprocess.Popen[bytes], deadline_s: float) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - loopback URL
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def stop_all(processes: list[tuple[str, subprocess.Popen[bytes]]], timeout: float = 10.0) -> None:
    for _name, process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {timeout:g} s: killing it")
            process.kill()
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20.0, help="simulator messages per second")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()

    env = dict(os.environ)
    # A fresh local RabbitMQ has only guest/guest; the seed defaults to user/password.
    env.setdefault("RABBITMQ_USER", "guest")
    env.setdefault("RABBITMQ_PASS", "guest")
    env.setdefault("API_PORT", str(args.port))
    env.setdefault("API_HOST", "127.0.0.1")
    if not check_dependencies(env):
        return 1

    api_base = f"http://{env['API_HOST']}:{env['API_PORT']}"
    metrics = f"{env.get('METRICS_HOST', '127.0.0.1')}:{env.get('METRICS_PORT', '9102')}"
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    interrupted = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Children get their own session so a terminal's Ctrl-C reaches only us: we stop them in order.
    spawn = {"env": env, "start_new_session": True}
    try:
        processes.append(
            ("consumer", subprocess.Popen([sys.executable, "-m", "ev_consumer"], **spawn))
        )
        processes.append(("api", subprocess.Popen([sys.executable, "-m", "ev_api"], **spawn)))
        if not wait_for_health(f"{api_base}/health", processes[-1][1], deadline_s=30):
            print(f"the API did not become healthy on {api_base}/health: see its log above")
            return 1
        simulator = [
            sys.executable, "-m", "ev_simulator",
            "--vehicles", str(args.vehicles),
            "--rate", str(args.rate),
            "--declare-topology",
        ]  # fmt: skip
        processes.append(("simulator", subprocess.Popen(simulator, **spawn)))
        print(
            f"\nEV telemetry stack is up: API {api_base}/docs, "
            f"e.g. curl {api_base}/api/v1/sensor/ev_0001 | "
            f"live: ws://{env['API_HOST']}:{env['API_PORT']}/api/v1/ws/sensor/ev_0001 | "
            f"metrics: {api_base}/metrics and http://{metrics}/metrics (consumer) | "
            "RabbitMQ UI http://localhost:15672 if its management plugin is on | Ctrl-C stops.\n",
            flush=True,
        )
        while not interrupted:
            for name, process in processes:
                if process.poll() is not None:
                    print(f"{name} exited with code {process.returncode}: stopping the stack")
                    return 1
            time.sleep(0.5)
        print("stopping the stack...")
        return 0
    finally:
        stop_all(processes)


if __name__ == "__main__":
    sys.exit(main())

"""Run the whole stack on this machine: consumer, API and a small simulated fleet, until Ctrl-C.

Used by `nox -s up`. Checks RabbitMQ and Redis first: starts a local one that is installed but
not running (and stops it again at the end), or says in one line how to install it; then starts
each service as a child process and stops them all cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from local_services import Started, ensure


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
    # The example alarm rules (docs/alarms.md), unless a rules file is configured already.
    examples = Path(__file__).resolve().parent.parent / "docs" / "examples" / "alarm-rules.yaml"
    env.setdefault("ALARM_RULES_FILE", str(examples))
    workdir = Path(tempfile.mkdtemp(prefix="ev-stack-"))
    started, problems = ensure(env, workdir)
    try:
        if problems:
            print("\n".join(problems))
            return 1
        return run_stack(args, env)
    finally:
        stop_servers(started)
        shutil.rmtree(workdir, ignore_errors=True)


def stop_servers(started: list[Started]) -> None:
    """Stop what ``ensure`` started, last first."""
    for handle in reversed(started):
        print(f"stopping the {handle.server.name} this stack started")
        handle.stop()


def run_stack(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The services as child processes until Ctrl-C (or until one of them exits)."""
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
        sensor = f"{api_base}/api/v1/sensor/ev_0001"
        print(
            f"\nEV telemetry stack is up: API {api_base}/docs\n"
            f"  the fleet:   curl '{api_base}/api/v1/sensors?sort=last_seen&limit=5'\n"
            f"  one sensor:  curl {sensor}\n"
            f"  aggregates:  curl '{sensor}/aggregate?sensor_type=speed&max_points=60'\n"
            f"  fleet mean:  curl '{api_base}/api/v1/aggregate?sensor_type=battery&prefix=ev_"
            "&max_points=60&agg=avg,min,max'\n"
            f"  CSV export:  curl -o ev_0001.csv '{sensor}/history.csv?sensor_type=battery,speed'\n"
            f"  alarms:      curl '{api_base}/api/v1/alarms?limit=10' "
            f"(rules: {env['ALARM_RULES_FILE']})\n"
            f"  live:        ws://{env['API_HOST']}:{env['API_PORT']}/api/v1/ws/sensor/ev_0001\n"
            f"  metrics:     {api_base}/metrics and http://{metrics}/metrics (consumer)\n"
            "  RabbitMQ UI http://localhost:15672 if its management plugin is on; Ctrl-C stops.\n",
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

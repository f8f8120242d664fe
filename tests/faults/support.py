"""Helpers of the fault tests: the processes under test and bounded waits.

Every process is started with its output in a log file under the test's tmp_path, and every wait
has a deadline; a test that fails leaves no process behind (see the fixtures in conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pika
import pytest
import redis

from ev_messaging import (
    EXCHANGE,
    AmqpSettings,
    Publisher,
    TopologySettings,
    declare_topology,
)
from ev_schemas import default_catalogue
from tests.faults.malformed import Fuzzed
from tests.support import free_port, wait_until

CONSUMER_ARGV = (sys.executable, "-m", "ev_consumer")
SIMULATOR_ARGV = (sys.executable, "-m", "ev_simulator")


class Process:
    """A child process with its output in ``log``; every one is killed at the end of its test
    if still running (see :func:`reap`)."""

    spawned: ClassVar[list[Process]] = []

    def __init__(self, name: str, argv: tuple[str, ...], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        Process.spawned.append(self)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or acknowledged."""
        if self.alive:
            self.popen.kill()
        self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; the exit status and how long the exit took. Fails after ``timeout``."""
        started = time.monotonic()
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
        return self.exited(started, timeout)

    def exited(self, since: float, timeout: float) -> tuple[int, float]:
        """Wait for the exit a signal sent at ``since`` asked for (a second signal could land
        in the interpreter's shutdown, which restores the default action)."""
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout:g} s of SIGTERM:\n{self.tail()}"
            ) from None
        return code, time.monotonic() - since

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} still running after {timeout:g} s") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def logged(self, text: str) -> Callable[[], bool]:
        """A condition for ``wait_until``: ``text`` appeared in the output."""
        return lambda: text in self.output()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


def reap() -> None:
    """Kill every process the test started and left running (after a failure, typically)."""
    spawned, Process.spawned = Process.spawned, []
    for process in spawned:
        if process.alive:
            process.popen.send_signal(signal.SIGCONT)  # a paused redis-server cannot die
            process.kill()


class Consumers:
    """Starts consumer processes on one vhost and key prefix; ``stop_all`` checks clean exits."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.started: list[Process] = []

    def start(self, **overrides: str) -> Process:
        """A new consumer; ``overrides`` are environment variables (e.g. ``REDIS_PORT="7001"``)."""
        env = {**self.env, **overrides}
        name = f"consumer-{len(self.started)}"
        process = Process(name, CONSUMER_ARGV, env, self.logs / f"{name}.log")
        self.started.append(process)
        return process

    @property
    def running(self) -> list[Process]:
        return [process for process in self.started if process.alive]

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every running consumer has connected to the broker (the interpreter's own
        start-up runs with the default SIGTERM action: a signal then is not the test's point)."""
        for process in self.running:
            wait_until(process.logged("consumer connected"), timeout, process.name)

    def stop_all(self, timeout: float = 10.0) -> list[float]:
        """SIGTERM every running consumer; each must exit 0 within ``timeout``. Exit times."""
        running = self.running
        sent = time.monotonic()
        for process in running:
            process.popen.send_signal(signal.SIGTERM)
        times = []
        for process in running:
            code, took = process.exited(sent, timeout)
            assert code == 0, f"{process.name} exited {code}:\n{process.tail()}"
            times.append(took)
        return times

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()


def amqp_via(amqp_url: str, port: int) -> str:
    """``amqp_url`` through a forwarder on ``port``."""
    parts = urllib.parse.urlsplit(amqp_url)
    netloc = f"{parts.username or 'guest'}:{parts.password or 'guest'}@127.0.0.1:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def consumer_env(amqp_url: str, redis_url: str, key_prefix: str) -> dict[str, str]:
    target = redis.connection.parse_url(redis_url)  # type: ignore[no-untyped-call]
    return {
        **os.environ,
        "RABBITMQ_URLS": amqp_url,
        "REDIS_HOST": str(target.get("host", "127.0.0.1")),
        "REDIS_PORT": str(target.get("port", 6379)),
        "REDIS_DB": str(target.get("db", 0)),
        "REDIS_KEY_PREFIX": key_prefix,
        "CONSUMER_BATCH_MS": "20",
        "LOG_LEVEL": "INFO",
        # Several consumers per host, and the broker cuts count the consumer's connections: no
        # metrics endpoint, hence no queue-depth poller and its connection.
        "METRICS_PORT": "0",
    }


def simulate(
    amqp_url: str,
    workdir: Path,
    *,
    count: int,
    rate: float,
    seed: int,
    bad_ratio: float = 0.05,
    vehicles: int = 20,
) -> Process:
    """Start the simulator (it declares the topology itself); its report goes to report.json."""
    argv = (
        *SIMULATOR_ARGV,
        "--amqp-url", amqp_url,
        "--vehicles", str(vehicles),
        "--count", str(count),
        "--rate", str(rate),
        "--seed", str(seed),
        "--bad-ratio", str(bad_ratio),
        "--declare-topology",
        "--log-level", "WARNING",
        "--report-json", str(workdir / "report.json"),
    )  # fmt: skip
    return Process("simulator", argv, dict(os.environ), workdir / "simulator.log")


def simulator_report(simulator: Process, workdir: Path, timeout: float) -> dict[str, Any]:
    """Wait for the simulator; its report, which must say everything was confirmed."""
    code = simulator.wait(timeout)
    assert code == 0, f"simulator exited {code}:\n{simulator.tail()}"
    report: dict[str, Any] = json.loads((workdir / "report.json").read_text())
    assert report["complete"], report
    return report


def publish(amqp_url: str, messages: Sequence[Fuzzed]) -> None:
    """Plain pika, with publisher confirms: each message is the broker's once this returns.

    The topology is declared first, as a publisher should: a message published before its
    queue is bound would be kept in ev.sensors.unrouted instead.
    """
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        declare_topology(channel, TopologySettings.from_types(default_catalogue()))
        channel.confirm_delivery()
        for message in messages:
            properties = pika.BasicProperties(
                delivery_mode=2, content_type=message.content_type, headers=message.headers or None
            )
            channel.basic_publish(EXCHANGE, message.routing_key, message.body, properties)
    finally:
        connection.close()


def publish_pipelined(amqp_url: str, messages: Sequence[Fuzzed], rate: float | None = None) -> None:
    """Like :func:`publish`, faster: ev-messaging's publisher keeps up to 1000 confirms in flight
    (properties other than the headers are its own: persistent, application/json). ``rate``
    bounds the messages per second."""
    settings = AmqpSettings(urls=(amqp_url,), client_name="fault-test")
    topology = TopologySettings.from_types(default_catalogue())
    with Publisher(settings, topology=topology) as publisher:
        started = time.monotonic()
        for sent, message in enumerate(messages):
            ahead = sent / rate - (time.monotonic() - started) if rate else 0.0
            if ahead > 0.01:
                publisher.sleep(ahead)  # serves confirms meanwhile
            publisher.publish(message.routing_key, message.body, headers=message.headers)
        publisher.flush(timeout=60)


def take_all(amqp_url: str, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        taken: list[tuple[bytes, dict[str, Any]]] = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((body, dict(properties.headers or {})))
    finally:
        connection.close()


class RedisServer:
    """A private redis-server on a free loopback port, without persistence."""

    def __init__(self, workdir: Path, *options: str, password: str | None = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("the Redis fault tests need redis-server on PATH")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = (
            exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir), *options,
        )  # fmt: skip
        if password is not None:
            argv += ("--requirepass", password)
        self.process = Process("redis-server", argv, dict(os.environ), workdir / "redis.log")
        self.client = redis.Redis(port=self.port, password=password, socket_timeout=2)
        wait_until(self.answers, 10, "the private redis-server")

    def answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def pause(self) -> None:
        """SIGSTOP: a hung server; connections open, nothing answered."""
        self.process.popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.popen.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.client.close()
        if self.process.alive:
            self.resume()
            self.process.kill()

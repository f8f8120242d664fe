"""The ev-simulator command: options, exit codes, the JSON report, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path

import pika.exceptions
import pytest

from ev_messaging import INVALID_QUEUE, UNROUTED_QUEUE, routing_key
from ev_simulator.cli import main
from ev_simulator.sensors import SIMULATED_TYPES

Depths = Callable[[Iterable[str], int], dict[str, int]]
QUEUES = [*(routing_key(name) for name in SIMULATED_TYPES), UNROUTED_QUEUE]


def test_help_lists_every_kind_and_type(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--bad-kinds" in out
    assert "future_timestamp" in out
    assert "motor_rpm" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--types", "battery,humidity"],
        ["--bad-kinds", "typo"],
        ["--bad-ratio", "1.5"],
        ["--vehicles", "0"],
        ["--log-level", "chatty"],
    ],
)
def test_bad_configuration_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "invalid configuration" in capsys.readouterr().err


def test_amqp_tls_files_with_plain_urls_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("only its existence is checked here\n")
    monkeypatch.setenv("RABBITMQ_TLS_CA_FILE", str(ca))
    assert main(["--amqp-url", "amqp://guest:guest@127.0.0.1:5672/%2F", "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "ev-simulator: invalid configuration: TLS settings need amqps:// URLs; these are amqp://\n"
    )


def test_count_and_duration_exclude_each_other() -> None:
    with pytest.raises(SystemExit) as done:
        main(["--count", "1", "--duration", "1"])
    assert done.value.code == 2


@pytest.mark.integration
def test_a_counted_run_with_its_json_report(
    amqp_url: str, tmp_path: Path, depths: Depths, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    argv = ["--amqp-url", amqp_url, "--declare-topology", "--count", "2000", "--rate", "0"]
    argv += ["--seed", "4", "--bad-ratio", "0.1", "--vehicles", "3", "--report-json", str(path)]
    assert main(argv) == 0
    assert "2000 published (confirmed)" in capsys.readouterr().out
    report = json.loads(path.read_text())
    assert report["published"] == report["sent"] == 2000
    assert report["complete"]
    assert report["seed"] == 4
    assert sorted(report["sensors"]) == ["ev_0001", "ev_0002", "ev_0003"]
    found = depths(QUEUES, 2000)
    for key, count in report["by_routing_key"].items():
        assert found.get(key, found[UNROUTED_QUEUE]) >= count
    assert found[UNROUTED_QUEUE] == report["expected"]["unrouted_queue"]
    assert depths([INVALID_QUEUE], 0)[INVALID_QUEUE] == 0  # nobody consumed: nothing moved yet


@pytest.mark.integration
def test_wrong_credentials_exit_1_with_a_hint(
    amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = urllib.parse.urlsplit(amqp_url)._replace(netloc="guest:wrong@127.0.0.1:5672")
    assert main(["--amqp-url", urllib.parse.urlunsplit(wrong), "--count", "1"]) == 1
    assert "RABBITMQ_USER" in capsys.readouterr().err


def published_so_far(depths: Depths) -> int:
    try:
        return sum(depths(QUEUES, 0).values())
    except pika.exceptions.ChannelClosedByBroker:  # the topology is not declared yet
        return 0


@pytest.mark.integration
def test_sigterm_stops_cleanly_and_reports(amqp_url: str, tmp_path: Path, depths: Depths) -> None:
    path = tmp_path / "report.json"
    env = {**os.environ, "RABBITMQ_URLS": amqp_url, "SIMULATOR_VEHICLES": "20"}
    command = [sys.executable, "-m", "ev_simulator", "--rate", "400", "--declare-topology"]
    process = subprocess.Popen(
        [*command, "--report-json", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while published_so_far(depths) < 100:
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "the simulator published nothing"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out.decode()
    assert "simulator interrupted" in out.decode()
    report = json.loads(path.read_text())
    assert report["interrupted"]
    assert report["complete"]
    assert sum(depths(QUEUES, report["published"]).values()) == report["published"]


@pytest.mark.integration
def test_a_missing_exchange_ends_the_run_with_a_hint(
    amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--amqp-url", amqp_url, "--count", "50", "--rate", "0"]) == 1
    out = capsys.readouterr().out
    assert "0 published (confirmed)" in out
    assert "--declare-topology" in out

"""The simulator publishes a fleet with every kind of bad and tricky message mixed in; once the
consumer has drained the queues, Redis (through the API) and the side queues hold exactly what the
simulator's report says they should."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import Stack
from tests.support import queue_depth, wait_until


@pytest.mark.integration
def test_everything_published_is_accounted_for(
    stack: Stack, api: httpx.Client, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ev_simulator",
            "--amqp-url",
            stack.amqp_url,
            "--vehicles",
            "4",
            "--count",
            "3000",
            "--rate",
            "0",
            "--bad-ratio",
            "0.1",
            "--alt-unit-ratio",
            "0",
            "--seed",
            "11",
            "--declare-topology",
            "--report-json",
            str(report_path),
        ],
        env=stack.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(report_path.read_text())
    assert report["complete"]
    assert report["published"] == 3000
    expected = report["expected"]
    for kind in ("invalid_queue", "unrouted_queue"):
        assert expected[kind] > 0, kind
    for kind in ("duplicates", "out_of_order"):
        assert report[kind] > 0, kind

    def counts_stored() -> dict[tuple[str, str], int]:
        stored = {}
        for sensor_id in report["sensors"]:
            answer = api.get(f"/sensor/{sensor_id}/summary")
            if answer.status_code == 200:
                for sensor_type, summary in answer.json()["types"].items():
                    stored[(sensor_id, sensor_type)] = summary["count"]
        return stored

    wanted = {
        (sensor_id, sensor_type): seen["count"]
        for sensor_id, types in report["sensors"].items()
        for sensor_type, seen in types.items()
    }
    assert sum(wanted.values()) == expected["stored_readings"]
    wait_until(lambda: counts_stored() == wanted, 60, "every distinct valid reading stored")
    wait_until(
        lambda: queue_depth(stack.amqp_url, "ev.sensors.invalid") == expected["invalid_queue"],
        30,
        "every invalid message moved aside",
    )
    assert queue_depth(stack.amqp_url, "ev.sensors.unrouted") == expected["unrouted_queue"]

    for sensor_id, types in report["sensors"].items():
        latest = api.get(f"/sensor/{sensor_id}").json()["readings"]
        for sensor_type, seen in types.items():
            assert latest[sensor_type]["timestamp"] == seen["last"]
            assert latest[sensor_type]["value"] == pytest.approx(seen["last_value"])

"""Readings published with plain pika come out of the fleet routes: the catalogue and its
count, the per-sensor and fleet-wide aggregates (through the rollups the consumer keeps), and
the CSV export, each equal to what the published readings say."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ev_schemas import format_epoch_ms
from ev_schemas.testing import fleet_reference, reference
from tests.e2e.support import Stack
from tests.e2e.test_contract_flow import publish
from tests.support import consuming, wait_until

# Two hours of battery readings every 30 s, ending ten minutes ago, on whole quarter hours so
# that 15-minute and hourly buckets come from the rollups.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(minutes=15)
START = END - timedelta(hours=2)
BUSES = ("bus_e2e_0", "bus_e2e_1", "bus_e2e_2")
CAR = "car_e2e_0"


def iso(moment: datetime) -> str:
    return format_epoch_ms(int(moment.timestamp() * 1000))


def readings() -> dict[str, list[tuple[int, float]]]:
    rng = random.Random(11)
    series: dict[str, list[tuple[int, float]]] = {}
    for sensor in (*BUSES, CAR):
        start_ms = int(START.timestamp() * 1000)
        series[sensor] = [
            (start_ms + step * 30_000, round(rng.uniform(5, 100), 1)) for step in range(240)
        ]
    return series


def message(sensor: str, ms: int, value: float) -> tuple[str, bytes]:
    body = {
        "sensor_id": sensor,
        "sensor_type": "battery",
        "timestamp": format_epoch_ms(ms),
        "value": value,
        "unit": "percentage",
    }
    return "battery", json.dumps(body).encode()


def as_api(buckets: list[dict[str, float | int | None]]) -> list[dict[str, object]]:
    return [
        {**b, "start": format_epoch_ms(int(b["start"])), "end": format_epoch_ms(int(b["end"]))}  # type: ignore[arg-type]
        for b in buckets
    ]


@pytest.mark.integration
def test_published_readings_come_out_of_the_fleet_routes(stack: Stack, api: httpx.Client) -> None:
    wait_until(consuming(stack.amqp_url, ["ev.sensor.battery"]), 30, "the consumer consuming")
    series = readings()
    messages = [message(s, ms, v) for s, points in series.items() for ms, v in points]
    # Out of order, and a tenth of them delivered twice.
    rng = random.Random(5)
    messages += rng.sample(messages, len(messages) // 10)
    rng.shuffle(messages)
    publish(stack.amqp_url, messages)

    def all_stored() -> bool:
        answer = api.get("/sensors/count", params={"prefix": "bus_e2e_"})
        if answer.status_code != 200 or answer.json()["count"] != len(BUSES):
            return False
        summary = api.get(f"/sensor/{CAR}/summary")
        return summary.status_code == 200 and summary.json()["types"]["battery"]["count"] == 240

    wait_until(all_stored, 60, "every reading stored")
    wait_until(
        lambda: all(
            api.get(f"/sensor/{s}/summary").json()["types"]["battery"]["count"] == 240
            for s in BUSES
        ),
        30,
        "every bus's readings stored",
    )

    # The catalogue: the buses by id, their type and last reading.
    page = api.get("/sensors", params={"prefix": "bus_e2e_", "limit": 2}).json()
    assert [item["sensor_id"] for item in page["items"]] == list(BUSES[:2])
    last = iso(END - timedelta(seconds=30))
    assert page["items"][0]["types"] == {"battery": last}
    rest = api.get("/sensors", params={"prefix": "bus_e2e_", "cursor": page["next_cursor"]})
    assert [item["sensor_id"] for item in rest.json()["items"]] == [BUSES[2]]
    assert (
        api.get("/sensors/count", params={"sensor_type": "battery", "prefix": "car_e2e"}).json()[
            "count"
        ]
        == 1
    )

    start_ms, end_ms = int(START.timestamp() * 1000), int(END.timestamp() * 1000)
    window = {"start_time": iso(START), "end_time": iso(END), "sensor_type": "battery"}
    # One sensor, 15-minute buckets: the reference over what was published.
    one = api.get(f"/sensor/{BUSES[1]}/aggregate", params={**window, "interval": "15m"})
    assert one.status_code == 200, one.text
    expected = reference(series[BUSES[1]], start_ms, end_ms, (15, "m"), "UTC", "none")
    assert one.json()["buckets"] == as_api(expected)
    # The fleet: every bus combined, hourly.
    fleet = api.get("/aggregate", params={**window, "prefix": "bus_e2e_", "interval": "1h"})
    assert fleet.status_code == 200, fleet.text
    assert fleet.json()["sensors"] == len(BUSES)
    buses = {sensor: series[sensor] for sensor in BUSES}
    expected = fleet_reference(buses, start_ms, end_ms, (1, "h"), "UTC", "none")
    assert fleet.json()["buckets"] == as_api(expected)

    # CSV: every reading once, and the marker saying the export is complete.
    exported = api.get(f"/sensor/{CAR}/history.csv", params=window)
    assert exported.status_code == 200
    lines = exported.text.splitlines()
    assert lines[-1] == "# complete: 240 rows"
    rows = list(csv.reader(io.StringIO("\n".join(lines[:-1]))))
    assert rows[0] == ["sensor_id", "sensor_type", "timestamp", "value", "unit"]
    assert [(row[2], float(row[3])) for row in rows[1:]] == [
        (format_epoch_ms(ms), value) for ms, value in series[CAR]
    ]

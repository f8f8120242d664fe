"""A separate client publishes with plain pika, exactly as the contract says; everything comes out
of the API, the WebSocket and the invalid/unrouted queues as the contract says."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pika
import pytest
from websockets.sync.client import connect

from tests.e2e.support import Stack
from tests.support import consuming, queue_depth, wait_until

T0 = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
SENSOR = "ev_e2e_1"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def reading(sensor_type: str, value: Any, unit: str, at: datetime, **extra: Any) -> bytes:
    body = {
        "sensor_id": SENSOR,
        "sensor_type": sensor_type,
        "timestamp": iso(at),
        "value": value,
        "unit": unit,
    }
    return json.dumps({**body, **extra}).encode()


VALID = [
    ("battery", reading("battery", 85.5, "percentage", T0)),
    ("battery", reading("battery", 80.0, "percentage", T0 + timedelta(seconds=60))),
    ("battery", reading("battery", 90.0, "percentage", T0 - timedelta(seconds=60))),  # late
    ("battery", reading("battery", 80.0, "percentage", T0 + timedelta(seconds=60))),  # again
    ("temperature", reading("temperature", 77, "fahrenheit", T0)),
    ("speed", reading("speed", 60, "mph", T0)),
]
INVALID = [
    ("battery", b'{"sensor_id": "ev_e2e_1", "sensor_type": '),
    ("battery", reading("battery", 150, "percentage", T0)),
    ("battery", reading("battery", 50, "volt", T0)),
    ("battery", reading("speed", 50, "km/h", T0)),
    ("battery", reading("battery", 50, "percentage", T0).replace(b"Z", b"")),
]
UNROUTED = [("warp_drive", reading("warp_drive", 1, "parsec", T0))]


def publish(amqp_url: str, messages: list[tuple[str, bytes]]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for sensor_type, body in messages:
            channel.basic_publish(
                "ev.sensors",
                f"ev.sensor.{sensor_type}",
                body,
                pika.BasicProperties(delivery_mode=2, content_type="application/json"),
                mandatory=True,
            )
    finally:
        connection.close()


def drain(amqp_url: str, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        messages = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((body, dict(properties.headers or {})))
    finally:
        connection.close()


@pytest.mark.integration
def test_published_readings_come_out_as_the_contract_says(stack: Stack, api: httpx.Client) -> None:
    queues = [f"ev.sensor.{sensor_type}" for sensor_type in ("battery", "temperature", "speed")]
    wait_until(consuming(stack.amqp_url, queues), 30, "the consumer consuming")
    pushed: list[dict[str, Any]] = []
    ws_url = stack.api_url.replace("http", "ws") + f"/api/v1/ws/sensor/{SENSOR}"
    with connect(ws_url, open_timeout=10) as websocket:
        listener = threading.Thread(
            target=lambda: [pushed.append(json.loads(m)) for m in websocket], daemon=True
        )
        listener.start()
        publish(stack.amqp_url, VALID + INVALID + UNROUTED)

        def summary_complete() -> bool:
            answer = api.get(f"/sensor/{SENSOR}/summary")
            return answer.status_code == 200 and len(answer.json()["types"]) == 3

        wait_until(summary_complete, 30, "the readings to be stored")
        wait_until(lambda: queue_depth(stack.amqp_url, "ev.sensors.invalid") == 5, 30, "invalid")
        wait_until(lambda: len(pushed) >= 5, 10, "live pushes")
        websocket.close()
        listener.join(timeout=5)

    latest = api.get(f"/sensor/{SENSOR}").json()
    assert latest["sensor_id"] == SENSOR
    assert {t: (r["value"], r["unit"]) for t, r in latest["readings"].items()} == {
        "battery": (80.0, "percentage"),  # newest by reading time, not the late 90.0
        "temperature": (25.0, "celsius"),
        "speed": (96.56064, "km/h"),
    }
    assert api.get(f"/sensor/{SENSOR}/battery").json() == {
        "sensor_id": SENSOR,
        "sensor_type": "battery",
        "timestamp": iso(T0 + timedelta(seconds=60)),
        "value": 80.0,
        "unit": "percentage",
    }
    history = api.get(
        f"/sensor/{SENSOR}/history",
        params={
            "start_time": iso(T0 - timedelta(hours=1)),
            "end_time": iso(T0 + timedelta(hours=1)),
            "sensor_type": "battery",
        },
    ).json()
    assert [(i["timestamp"], i["value"]) for i in history["items"]] == [
        (iso(T0 - timedelta(seconds=60)), 90.0),
        (iso(T0), 85.5),
        (iso(T0 + timedelta(seconds=60)), 80.0),
    ]
    battery = api.get(f"/sensor/{SENSOR}/summary").json()["types"]["battery"]
    assert (battery["count"], battery["min"], battery["max"]) == (3, 80.0, 90.0)
    assert battery["mean"] == pytest.approx((85.5 + 80 + 90) / 3)
    assert api.get("/sensor/ev_nobody").status_code == 404

    invalid = drain(stack.amqp_url, "ev.sensors.invalid")
    assert sorted(body for body, _ in invalid) == sorted(body for _, body in INVALID)
    for _body, headers in invalid:
        assert headers["x-ev-routing-key"] == "ev.sensor.battery"
        assert headers["x-ev-error"]
    unrouted = drain(stack.amqp_url, "ev.sensors.unrouted")
    assert [body for body, _ in unrouted] == [UNROUTED[0][1]]

    assert sorted((p["sensor_type"], p["timestamp"]) for p in pushed) == sorted(
        [
            ("battery", iso(T0)),
            ("battery", iso(T0 + timedelta(seconds=60))),
            ("battery", iso(T0 - timedelta(seconds=60))),
            ("temperature", iso(T0)),
            ("speed", iso(T0)),
        ]
    )

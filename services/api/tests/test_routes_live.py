"""WS /api/v1/ws/sensor/{id}: snapshot then live readings, filters, refusals, slow clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from _api_helpers import reading
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ev_api.live_fanout import LiveFanout, Signal
from ev_api.routes.live import _Session
from ev_schemas import AlarmRule, default_catalogue
from ev_storage import KeyLayout, ReadingReader, ReadingWriter, StorageSettings

WS = "/api/v1/ws/sensor"


def refusal(client: TestClient, url: str, **options: Any) -> WebSocketDisconnect:
    """The close the server answers ``url`` with, before sending any reading."""
    with client.websocket_connect(url, **options) as ws, pytest.raises(WebSocketDisconnect) as exc:
        ws.receive_text()
    return exc.value


def receive_texts(ws: Any, count: int) -> list[str]:
    return [ws.receive_text() for _ in range(count)]


def test_snapshot_then_live(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("speed", 5, 40), reading("battery", 0, 80)])
    with client.websocket_connect(f"{WS}/ev_001") as ws:
        # The latest of each type first, in catalogue order...
        assert ws.receive_json() == reading("battery", 0, 80).model_dump(mode="json")
        assert ws.receive_json() == reading("speed", 5, 40).model_dump(mode="json")
        # ...then every newly stored reading, as the consumer stores it.
        writer.store_many([reading("battery", 10, 79)])
        assert ws.receive_text() == reading("battery", 10, 79).to_json().decode()
        writer.store_many([reading("battery", 3, 81)])  # older, but newly stored: pushed too
        assert ws.receive_json()["value"] == 81


def test_no_snapshot_for_a_new_sensor_then_live(client: TestClient, writer: ReadingWriter) -> None:
    # alarms=true only for its "subscribed" marker: nothing comes before it for a new sensor,
    # and a reading stored before the subscription is confirmed would be missed (by design).
    with client.websocket_connect(f"{WS}/ev_new?alarms=true") as ws:
        assert ws.receive_json() == {"event": "subscribed"}
        writer.store_many([reading("speed", 1, 12, sensor_id="ev_new")])
        assert ws.receive_json()["sensor_id"] == "ev_new"


def test_types_filter(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery", 0), reading("speed", 0, 30), reading("voltage", 0, 400)])
    with client.websocket_connect(f"{WS}/ev_001?types=voltage,speed") as ws:
        assert ws.receive_json()["sensor_type"] == "voltage"  # in the requested order
        assert ws.receive_json()["sensor_type"] == "speed"
        writer.store_many([reading("battery", 1), reading("speed", 1, 31)])
        assert ws.receive_json() == reading("speed", 1, 31).model_dump(mode="json")


def test_duplicate_readings_are_not_pushed_twice(client: TestClient, writer: ReadingWriter) -> None:
    writer.store_many([reading("battery", 0)])
    with client.websocket_connect(f"{WS}/ev_001") as ws:
        assert ws.receive_json()["timestamp"] == "2024-02-01T12:00:00Z"
        writer.store_many([reading("battery", 1), reading("battery", 1), reading("battery", 2)])
        assert ws.receive_json()["timestamp"] == "2024-02-01T12:00:01Z"
        assert ws.receive_json()["timestamp"] == "2024-02-01T12:00:02Z"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"{WS}/ev_001?types=battery,warp", "unknown sensor type(s) 'warp'"),
        (f"{WS}/ev_001?types=", "name at least one sensor type"),
        (f"{WS}/ev_001?typo=battery", "unknown query parameter(s): typo"),
        (f"{WS}/bad!id", "sensor_id must be"),
    ],
)
def test_bad_requests_close_with_policy_violation(
    client: TestClient, url: str, reason: str
) -> None:
    closed = refusal(client, url)
    assert closed.code == 1008
    assert closed.reason is not None
    assert reason in closed.reason


def test_api_key_by_header_or_query(
    make_client: Callable[..., TestClient], writer: ReadingWriter
) -> None:
    client = make_client(api_keys="k1,k2")
    writer.store_many([reading("battery")])
    for url, headers in [
        (f"{WS}/ev_001?api_key=k2", {}),
        (f"{WS}/ev_001", {"X-API-Key": "k1"}),
    ]:
        with client.websocket_connect(url, headers=headers) as ws:
            assert ws.receive_json()["sensor_type"] == "battery"
    for url in (f"{WS}/ev_001", f"{WS}/ev_001?api_key=wrong"):
        closed = refusal(client, url)
        assert (closed.code, closed.reason) == (1008, "missing or invalid API key")


def test_unauthenticated_refusal_comes_before_input_checks(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_keys="k1")
    closed = refusal(client, f"{WS}/bad!id?typo=1")
    assert (closed.code, closed.reason) == (1008, "missing or invalid API key")


def test_storage_unavailable_closes_try_again_later(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.2)
    closed = refusal(client, f"{WS}/ev_001")
    assert (closed.code, closed.reason) == (1013, "storage unavailable")


def test_slow_client_is_disconnected(
    make_client: Callable[..., TestClient],
    redis_client: redis.Redis,
    key_prefix: str,
    writer: ReadingWriter,
) -> None:
    client = make_client(ws_queue_size=1)
    channel = KeyLayout(key_prefix).live_channel("ev_001")
    burst = 300
    writer.store_many([reading("speed", 0, 10)])
    with client.websocket_connect(f"{WS}/ev_001") as ws:
        # The snapshot comes after the subscription is confirmed: nothing of the burst is lost
        # (published earlier, it could be, and the test then waited forever for the rest).
        assert ws.receive_json()["sensor_type"] == "speed"
        # Published in one go, the burst reaches the fan-out faster than a client can be sent to.
        with redis_client.pipeline(transaction=False) as pipe:
            for second in range(burst):
                pipe.publish(channel, reading("battery", second).to_json())
            pipe.execute()
        with pytest.raises(WebSocketDisconnect) as closed:  # before the burst is through
            receive_texts(ws, burst)
    assert closed.value.code == 1013
    assert closed.value.reason is not None
    assert "too slow" in closed.value.reason


# --- the session logic, driven directly with the real fan-out and reader ----------------------


class RecordingSocket:
    """Stands in for the client side of a WebSocket: records texts, disconnects on demand."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._gone = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def receive(self) -> dict[str, Any]:
        await self._gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    def disconnect(self) -> None:
        self._gone.set()


@pytest.fixture
async def fanout_and_reader(
    redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[LiveFanout, ReadingReader]]:
    client = redis.asyncio.Redis.from_url(redis_url)
    reader = ReadingReader(client, StorageSettings(key_prefix=key_prefix), default_catalogue())
    fanout = LiveFanout(client, channel_for=reader.keys.live_channel, queue_size=16)
    await fanout.start()
    yield fanout, reader
    await fanout.aclose()
    await client.aclose()


async def wait_for_sent(socket: RecordingSocket, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(socket.sent) < count:
        assert time.monotonic() < deadline, f"only {socket.sent} sent"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_a_reading_in_the_snapshot_is_not_sent_again_live(
    fanout_and_reader: tuple[LiveFanout, ReadingReader], writer: ReadingWriter
) -> None:
    fanout, reader = fanout_and_reader
    socket = RecordingSocket()
    first, second = reading("battery", 1), reading("battery", 2)
    async with fanout.subscribe("ev_001") as subscription:
        # Stored after subscribing and before the snapshot: in both, to be sent once.
        writer.store_many([first])
        session = _Session(socket, reader, "ev_001", None)  # type: ignore[arg-type]
        await session.send_latest()
        writer.store_many([second])
        relay = asyncio.create_task(session.relay(subscription))
        await wait_for_sent(socket, 2)
        socket.disconnect()
        await relay
    assert socket.sent == [first.to_json().decode(), second.to_json().decode()]


@pytest.mark.anyio
async def test_resync_sends_only_what_changed(
    fanout_and_reader: tuple[LiveFanout, ReadingReader],
    writer: ReadingWriter,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    fanout, reader = fanout_and_reader
    socket = RecordingSocket()
    writer.store_many([reading("battery", 1), reading("speed", 1, 10)])
    async with fanout.subscribe("ev_001") as subscription:
        session = _Session(socket, reader, "ev_001", None)  # type: ignore[arg-type]
        await session.send_latest()
        relay = asyncio.create_task(session.relay(subscription))
        # A reading stored while the fan-out was disconnected: in Redis, never seen on the channel.
        missed = reading("speed", 5, 20)
        keys = KeyLayout(key_prefix)
        redis_client.set(keys.latest("ev_001", "speed"), missed.to_json())
        subscription.notify(Signal.RESYNC)
        await wait_for_sent(socket, 3)
        socket.disconnect()
        await relay
    assert socket.sent[2] == missed.to_json().decode()
    assert len(socket.sent) == 3  # battery had not changed: not sent again


def test_resume_after_a_reconnect_without_a_gap(client: TestClient, writer: ReadingWriter) -> None:
    """The documented way back: remember the last timestamp seen per type, read history from it
    (inclusive: the overlap is dropped by (type, timestamp)), then reconnect for live readings."""
    writer.store_many([reading("battery", 0)])
    last_seen: dict[str, str] = {}
    with client.websocket_connect(f"{WS}/ev_001?types=battery") as ws:
        message = ws.receive_json()
        last_seen[message["sensor_type"]] = message["timestamp"]
    # Stored while the client was away: none of these reaches it live.
    writer.store_many([reading("battery", second) for second in (1, 2, 3)])
    seen = {("battery", last_seen["battery"])}
    page = client.get(
        "/api/v1/sensor/ev_001/history",
        params={"sensor_type": "battery", "start_time": last_seen["battery"]},
    ).json()
    missed = [
        item for item in page["items"] if (item["sensor_type"], item["timestamp"]) not in seen
    ]
    assert [item["timestamp"][-3:] for item in missed] == ["01Z", "02Z", "03Z"]
    with client.websocket_connect(f"{WS}/ev_001?types=battery") as ws:
        assert ws.receive_json()["timestamp"].endswith("03Z")  # the snapshot: already in history
        writer.store_many([reading("battery", 4)])
        assert ws.receive_json()["timestamp"].endswith("04Z")


# --- ?alarms=true: the sensor's alarm events besides its readings -------------------------------

HOT = AlarmRule.model_validate({"id": "hot", "sensor_type": "temperature", "above": 100})
LOW = AlarmRule.model_validate(
    {"id": "low", "sensor_type": "battery", "below": 10, "severity": "critical"}
)


@pytest.fixture
def alarm_writer(redis_client: redis.Redis, key_prefix: str) -> ReadingWriter:
    """Stores readings as the consumer does with the rules HOT and LOW."""
    return ReadingWriter(
        redis_client, StorageSettings(key_prefix=key_prefix), alarm_rules=[HOT, LOW]
    )


def test_alarm_events_besides_readings(client: TestClient, alarm_writer: ReadingWriter) -> None:
    with client.websocket_connect(f"{WS}/ev_001?alarms=true") as ws:
        assert ws.receive_json() == {"event": "subscribed"}  # no readings yet: no snapshot
        alarm_writer.store_many([reading("temperature", 1, 110)])
        assert ws.receive_json()["value"] == 110  # the reading first, then what it raised
        raised = ws.receive_json()
        stored = client.get("/api/v1/sensor/ev_001/alarms").json()["items"]
        assert raised == {
            "event": "alarm",
            "kind": "raised",
            "at": raised["at"],
            "alarm": stored[0],
        }
        assert raised["alarm"]["state"] == "active"
        assert raised["alarm"]["raised_at"] == raised["at"]
        alarm_writer.store_many([reading("temperature", 2, 40)])
        assert ws.receive_json()["value"] == 40
        cleared = ws.receive_json()
        stored = client.get("/api/v1/sensor/ev_001/alarms").json()["items"]
        assert (cleared["event"], cleared["kind"]) == ("alarm", "cleared")
        assert cleared["alarm"] == stored[0]
        assert cleared["alarm"]["raised_at"] == raised["at"]  # when it was raised, not now
        assert cleared["alarm"]["cleared"] == "2024-02-01T12:00:02Z"


def test_the_snapshot_comes_before_subscribed(
    client: TestClient, alarm_writer: ReadingWriter
) -> None:
    alarm_writer.store_many([reading("battery", 0, 50)])
    with client.websocket_connect(f"{WS}/ev_001?alarms=1") as ws:
        assert ws.receive_json()["sensor_type"] == "battery"
        assert ws.receive_json() == {"event": "subscribed"}
        alarm_writer.store_many([reading("battery", 1, 5)])
        assert ws.receive_json()["value"] == 5
        assert ws.receive_json()["alarm"]["rule_id"] == "low"


def test_no_alarm_events_without_alarms_true(
    client: TestClient, alarm_writer: ReadingWriter
) -> None:
    for query in ("", "?alarms=false"):
        sensor = f"ev_q{len(query)}"
        alarm_writer.store_many([reading("temperature", 0, 50, sensor_id=sensor)])
        with client.websocket_connect(f"{WS}/{sensor}{query}") as ws:
            assert ws.receive_json()["value"] == 50  # the snapshot: subscribed
            alarm_writer.store_many([reading("temperature", 1, 110, sensor_id=sensor)])
            alarm_writer.store_many([reading("temperature", 2, 120, sensor_id=sensor)])
            # Published in order on the one connection: an alarm event would come in between.
            assert ws.receive_json()["value"] == 110
            assert ws.receive_json()["value"] == 120


def test_types_filter_alarm_events_too(client: TestClient, alarm_writer: ReadingWriter) -> None:
    with client.websocket_connect(f"{WS}/ev_001?alarms=true&types=battery") as ws:
        assert ws.receive_json() == {"event": "subscribed"}
        alarm_writer.store_many([reading("temperature", 1, 110)])  # raises "hot": not wanted
        alarm_writer.store_many([reading("battery", 1, 5)])
        assert ws.receive_json()["sensor_type"] == "battery"
        assert ws.receive_json()["alarm"]["rule_id"] == "low"


def test_a_bad_alarms_value_closes_with_policy_violation(client: TestClient) -> None:
    closed = refusal(client, f"{WS}/ev_001?alarms=maybe")
    assert (closed.code, closed.reason) == (1008, "alarms must be true or false, not 'maybe'")

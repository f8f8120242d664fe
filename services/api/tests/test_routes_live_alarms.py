"""WS /api/v1/ws/alarms: every alarm event of the fleet, filters, refusals, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from _api_helpers import reading
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ev_api.alarm_filter import AlarmFilter
from ev_api.live_fanout import Signal, Subscription
from ev_api.routes.live_alarms import _forward
from ev_schemas import AlarmRule
from ev_storage import KeyLayout, ReadingWriter, StorageSettings

WS = "/api/v1/ws/alarms"
RULES = [
    AlarmRule.model_validate({"id": "hot", "sensor_type": "temperature", "above": 100}),
    AlarmRule.model_validate(
        {"id": "low", "sensor_type": "battery", "below": 10, "severity": "critical"}
    ),
]


@pytest.fixture
def alarm_writer(redis_client: redis.Redis, key_prefix: str) -> ReadingWriter:
    """Stores readings as the consumer does with the rules RULES."""
    return ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), alarm_rules=RULES)


def raise_hot(writer: ReadingWriter, sensor_id: str, seconds: float = 1) -> None:
    writer.store_many([reading("temperature", seconds, 110, sensor_id=sensor_id)])


def raise_low(writer: ReadingWriter, sensor_id: str, seconds: float = 1) -> None:
    writer.store_many([reading("battery", seconds, 5, sensor_id=sensor_id)])


@contextlib.contextmanager
def subscribed(client: TestClient, url: str = WS, **options: Any) -> Iterator[Any]:
    """A fleet socket whose subscription is confirmed (its first message)."""
    with client.websocket_connect(url, **options) as ws:
        assert ws.receive_json() == {"event": "subscribed"}
        yield ws


def receive_texts(ws: Any, count: int) -> list[str]:
    return [ws.receive_text() for _ in range(count)]


def refusal(client: TestClient, url: str, **options: Any) -> WebSocketDisconnect:
    with client.websocket_connect(url, **options) as ws, pytest.raises(WebSocketDisconnect) as exc:
        ws.receive_text()
    return exc.value


def test_every_sensors_alarm_events(client: TestClient, alarm_writer: ReadingWriter) -> None:
    with subscribed(client) as ws:
        raise_hot(alarm_writer, "ev_a")
        raise_low(alarm_writer, "ev_b")
        first, second = ws.receive_json(), ws.receive_json()
        assert [
            (e["kind"], e["alarm"]["sensor_id"], e["alarm"]["rule_id"]) for e in (first, second)
        ] == [
            ("raised", "ev_a", "hot"),
            ("raised", "ev_b", "low"),
        ]
        assert first["alarm"] == client.get("/api/v1/sensor/ev_a/alarms").json()["items"][0]
        alarm_writer.store_many([reading("temperature", 2, 20, sensor_id="ev_a")])
        cleared = ws.receive_json()
        assert (cleared["event"], cleared["kind"], cleared["alarm"]["state"]) == (
            "alarm",
            "cleared",
            "cleared",
        )
        assert cleared["alarm"]["alarm_id"] == first["alarm"]["alarm_id"]


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("severity=critical", ("ev_b", "low")),
        ("severity=info,critical", ("ev_b", "low")),
        ("sensor_type=battery", ("ev_b", "low")),
        ("rule=low", ("ev_b", "low")),
        ("rule=low&rule=nothing", ("ev_b", "low")),
        ("prefix=ev_b", ("ev_b", "low")),
        ("prefix=ev_a&sensor_type=temperature&severity=warning&rule=hot", ("ev_a", "hot")),
    ],
)
def test_filters(
    client: TestClient, alarm_writer: ReadingWriter, query: str, wanted: tuple[str, str]
) -> None:
    with subscribed(client, f"{WS}?{query}") as ws:
        # In this order on the one connection: the first event received is the first that passes.
        for sensor, store in (("ev_a", raise_hot), ("ev_b", raise_low), ("ev_a2", raise_hot)):
            store(alarm_writer, sensor)
        event = ws.receive_json()
        assert (event["alarm"]["sensor_id"], event["alarm"]["rule_id"]) == wanted


def test_alarms_of_another_prefix_are_not_sent(
    client: TestClient, redis_client: redis.Redis, key_prefix: str, alarm_writer: ReadingWriter
) -> None:
    other = ReadingWriter(
        redis_client, StorageSettings(key_prefix=f"{key_prefix}other:"), alarm_rules=RULES
    )
    with subscribed(client) as ws:
        raise_hot(other, "ev_a")
        raise_low(alarm_writer, "ev_b")
        assert ws.receive_json()["alarm"]["sensor_id"] == "ev_b"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("severity=urgent", "unknown severity 'urgent'; one or more of info, warning, critical"),
        ("sensor_type=warp", "unknown sensor type(s) 'warp'"),
        ("rule=Hot!", "rule 'Hot!' is not a rule id"),
        ("prefix=ev%2F1", "prefix must be at most 64 letters, digits, '_', '-' or '.'"),
        ("typo=1", "unknown query parameter(s): typo"),
    ],
)
def test_bad_parameters_close_with_policy_violation(
    client: TestClient, query: str, reason: str
) -> None:
    closed = refusal(client, f"{WS}?{query}")
    assert closed.code == 1008
    assert closed.reason is not None
    assert reason in closed.reason


def test_api_key_by_header_or_query(
    make_client: Callable[..., TestClient], alarm_writer: ReadingWriter
) -> None:
    client = make_client(api_keys="k1")
    for url, headers in [(f"{WS}?api_key=k1", {}), (WS, {"X-API-Key": "k1"})]:
        with subscribed(client, url, headers=headers):
            pass
    for url in (WS, f"{WS}?api_key=wrong", f"{WS}?severity=urgent"):
        closed = refusal(client, url)
        assert (closed.code, closed.reason) == (1008, "missing or invalid API key")


def test_connections_count_against_the_rate_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(rate_limit_per_minute=1)
    with subscribed(client):
        pass
    closed = refusal(client, WS)
    assert closed.code == 1013
    assert closed.reason is not None
    assert closed.reason.startswith("rate limit exceeded; retry after")


def test_slow_client_is_disconnected(
    make_client: Callable[..., TestClient], redis_client: redis.Redis, key_prefix: str
) -> None:
    client = make_client(ws_queue_size=1)
    channel = KeyLayout(key_prefix).alarm_channel("ev_001")
    burst = 300
    with client.websocket_connect(WS) as ws:
        assert ws.receive_json() == {"event": "subscribed"}
        # Published in one go, the burst reaches the fan-out faster than a client can be sent to.
        with redis_client.pipeline(transaction=False) as pipe:
            for n in range(burst):
                pipe.publish(channel, f"raised|temperature|hot|{n}|{n}||warning|{n}|{n}|")
            pipe.execute()
        with pytest.raises(WebSocketDisconnect) as closed:  # before the burst is through
            receive_texts(ws, burst)
    assert closed.value.code == 1013
    assert closed.value.reason is not None
    assert "too slow" in closed.value.reason


def test_storage_unavailable_closes_try_again_later(
    make_client: Callable[..., TestClient], closed_port: int
) -> None:
    client = make_client(redis_port=closed_port, redis_socket_timeout_s=0.2)
    closed = refusal(client, WS)
    assert (closed.code, closed.reason) == (1013, "storage unavailable")


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)


@pytest.mark.anyio
async def test_a_resubscription_sends_a_gap_event() -> None:
    socket = RecordingSocket()
    subscription = Subscription("pattern", 4)
    subscription.notify(Signal.RESYNC)
    subscription.notify(Signal.RESYNC)  # the same reconnection, seen on a second channel
    forward = asyncio.create_task(_forward(socket, subscription, AlarmFilter()))  # type: ignore[arg-type]
    while not socket.sent:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert len(socket.sent) == 1
    subscription.notify(Signal.RESYNC)  # a later reconnection: told again
    while len(socket.sent) < 2:
        await asyncio.sleep(0.01)
    forward.cancel()
    assert socket.sent == ['{"event":"gap"}', '{"event":"gap"}']

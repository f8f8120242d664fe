"""A fuzz target for the consumer's message path: hostile bodies, headers and routing keys.

In process and fast: each example is a batch of messages as pika hands them to the consumer
(``Inbox.on_message``), run through the consumer's own pipeline (validation, then the write
script on the shared Redis under a private prefix), then settled as ``BatchConsumer`` settles a
batch (``Inbox.settle``) on a recording channel in place of the broker's. Then the same batch
again, as a redelivery. Every message must end in exactly one outcome (stored, duplicate, or moved
aside with a reason), the batch must be acknowledged with one multiple-ack and one commit, and a
message moved aside must go out byte for byte with its headers kept and ours added, in properties
pika can encode. The oracle is the validator plus a small model of the store's identities.

The run is bounded by a hypothesis profile (``EV_FUZZ_PROFILE``): ``ev-fuzz`` (the default, about
30 s here) or ``ev-fuzz-long`` for a longer search.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import pytest
import redis
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from ev_consumer.pipeline import CONFLICT_REASON, EXPIRED_REASON, ReadingPipeline
from ev_messaging import (
    HEADER_ERROR,
    HEADER_ROUTING_KEY,
    INVALID_QUEUE,
    Delivery,
    TopologySettings,
    routing_key,
    sensor_type_from_routing_key,
)
from ev_messaging.inbox import Inbox
from ev_schemas import InvalidReading, ReadingValidator, default_catalogue, shown, timestamp_ms
from ev_storage import ReadingWriter, StorageSettings

pytestmark = pytest.mark.integration

settings.register_profile(
    "ev-fuzz",
    max_examples=1_200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("ev-fuzz-long", settings.get_profile("ev-fuzz"), max_examples=5_000)
PROFILE = settings.get_profile(os.environ.get("EV_FUZZ_PROFILE", "ev-fuzz"))

CATALOGUE = default_catalogue()
TYPES = tuple(CATALOGUE)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)
# A few identities, so that a batch often carries a reading twice, with its value or another.
SENSORS = ("ev_fz_1", "ev_fz_2")
MOMENTS = (*(NOW - timedelta(seconds=s) for s in (0, 1, 2, 60)), NOW - timedelta(days=8))

# Bodies: raw bytes, JSON of any shape, and readings with each field valid or not.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
timestamps = st.one_of(
    st.sampled_from(MOMENTS).map(lambda t: t.isoformat().replace("+00:00", "Z")),
    st.sampled_from(MOMENTS).map(lambda t: t.astimezone(UTC).isoformat()),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),  # naive
    st.text(max_size=30),
)
values = st.one_of(
    st.sampled_from([0, 0.0, -0.0, 1, 50.5, 99.99, 100, 20.0, 68.0]),
    st.floats(min_value=-1000, max_value=1000),
    st.floats(),
    json_values,
)
units = st.one_of(
    st.sampled_from(sorted({unit for t in TYPES for unit in CATALOGUE[t].accepted_units})),
    st.text(max_size=12),
)
BROKEN = {
    "sensor_id": st.text(max_size=70) | json_values,
    "sensor_type": st.text(max_size=12) | st.sampled_from(TYPES) | json_values,
    "timestamp": timestamps | json_values,
    "value": values,
    "unit": units | json_values,
}


@st.composite
def reading_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A valid reading of a few identities and values; then perhaps one field broken or dropped,
    perhaps a key added."""
    sensor_type = CATALOGUE[draw(st.sampled_from(TYPES))]
    low, high = sensor_type.minimum, sensor_type.maximum
    fields: dict[str, Any] = {
        "sensor_id": draw(st.sampled_from(SENSORS)),
        "sensor_type": sensor_type.name,
        "timestamp": draw(st.sampled_from(MOMENTS)).isoformat().replace("+00:00", "Z"),
        "value": draw(
            st.sampled_from([low, high, (low + high) / 2])
            | st.floats(min_value=low, max_value=high)
        ),
        "unit": draw(st.sampled_from([sensor_type.unit, *sensor_type.accepted_units])),
    }
    broken = draw(st.sampled_from([*[None] * 6, *fields]))
    if broken is not None:
        if draw(st.booleans()):
            del fields[broken]
        else:
            fields[broken] = draw(BROKEN[broken])
    if draw(st.integers(0, 9)) == 0:
        fields[draw(st.text(max_size=10))] = draw(json_values)
    return fields


@st.composite
def bodies(draw: st.DrawFn, fields: dict[str, Any]) -> bytes | None:
    """Mostly None: the reading's JSON; else cut short, any JSON, or any bytes."""
    kind = draw(st.sampled_from(["reading"] * 6 + ["json", "bytes", "cut"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "cut":
        body = json.dumps(fields).encode()
        return body[: draw(st.integers(0, len(body)))]
    return None


routing_keys = st.one_of(
    st.sampled_from([routing_key(t) for t in TYPES]),
    st.sampled_from(["ev.sensor.", "ev.sensor.Battery", "ev.sensor.battery.x", "x", ""]),
    st.text(max_size=40),
    st.text(max_size=20).map(lambda name: "ev.sensor." + name),
)
# What an AMQP table can carry (pika decodes into these types), forged headers of ours included.
header_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
header_tables = st.dictionaries(
    st.one_of(st.sampled_from([HEADER_ERROR, HEADER_ROUTING_KEY, "x-death"]), st.text(max_size=20)),
    header_values,
    max_size=4,
)


@dataclass(frozen=True)
class Message:
    routing_key: str
    body: bytes
    headers: dict[str, Any] | None
    content_type: str | None
    fields: dict[str, Any] | None = None  # the reading the body is the JSON of, if it is

    def as_received(self, tag: int) -> tuple[Any, Any, bytes]:
        """(method, properties, body) as pika's on_message callback gets them: the properties
        went through the wire format, as they would from the broker."""
        sent = pika.BasicProperties(
            content_type=self.content_type, headers=self.headers, delivery_mode=2
        )
        received = pika.BasicProperties()
        received.decode(b"".join(sent.encode()))
        method = pika.spec.Basic.Deliver(
            consumer_tag="fuzz",
            delivery_tag=tag,
            exchange="ev.sensors",
            routing_key=self.routing_key,
        )
        return method, received, self.body


def _encodable(message: Message) -> bool:
    """Whether a publisher could send it at all (pika refuses some header values)."""
    try:
        message.as_received(1)
    except Exception:
        return False
    return True


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """Mostly a reading on its own type's routing key, else on any key; any headers."""
    fields = draw(reading_fields())
    sensor_type = fields.get("sensor_type")
    own_key = isinstance(sensor_type, str) and draw(st.integers(0, 9)) > 0
    body = draw(bodies(fields))
    message = Message(
        routing_key=f"ev.sensor.{sensor_type}" if own_key else draw(routing_keys),
        body=json.dumps(fields).encode() if body is None else body,
        headers=draw(st.none() | header_tables),
        content_type=draw(
            st.none() | st.sampled_from(["application/json", "text/plain"]) | st.text(max_size=10)
        ),
        fields=fields if body is None else None,
    )
    assume(_encodable(message))
    return message


@st.composite
def batches(draw: st.DrawFn) -> list[Message]:
    """Messages, then copies of some readings among them: the same, with another value, or
    older than the retention behind them, anywhere in the batch."""
    batch = draw(st.lists(messages(), min_size=1, max_size=10))
    readings = [message for message in batch if message.fields is not None]
    for _ in range(draw(st.integers(0, 4)) if readings else 0):
        original = draw(st.sampled_from(readings))
        assert original.fields is not None
        fields = dict(original.fields)
        change = draw(st.sampled_from(["same", "value", "value", "older"]))
        if change == "value":
            fields["value"] = draw(st.sampled_from([0.0, -0.0, 1.0, 42.0]) | st.floats(0, 100))
        elif change == "older":
            with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError):  # broken
                moment = datetime.fromisoformat(fields["timestamp"])
                fields["timestamp"] = (moment - RETENTION - timedelta(hours=1)).isoformat()
        copy = replace(original, body=json.dumps(fields).encode(), fields=fields)
        batch.insert(draw(st.integers(0, len(batch))), copy)
    return batch


@dataclass
class RecordingChannel:
    """The broker's side of a consuming channel in transaction mode, recorded."""

    published: list[tuple[str, str, bytes, Any]] = field(default_factory=list)
    acks: list[tuple[int, bool]] = field(default_factory=list)
    commits: int = 0

    def tx_select(self) -> None:
        pass

    def add_on_return_callback(self, _callback: Any) -> None:
        pass

    def basic_publish(
        self, exchange: str, key: str, body: bytes, properties: Any, mandatory: bool = False
    ) -> None:
        assert mandatory, "a message moved aside must not vanish unrouted"
        self.published.append((exchange, key, body, properties))

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))

    def tx_commit(self) -> None:
        self.commits += 1


class IdleConnection:
    def process_data_events(self, time_limit: float = 0) -> None:
        pass


class StoreModel:
    """What the write script does with a valid reading: identities, values, the window."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, int], float] = {}
        self.newest: dict[tuple[str, str], int] = {}

    def outcome(self, sensor_id: str, sensor_type: str, ms: int, value: float) -> str:
        pair = (sensor_id, sensor_type)
        window_start = self.newest.get(pair, ms) - int(RETENTION.total_seconds() * 1000)
        stored = self.values.get((sensor_id, sensor_type, ms))
        if stored is not None and ms >= window_start:
            return "duplicate" if stored == value else "conflict"
        if ms < window_start:
            return "expired"
        self.values[(sensor_id, sensor_type, ms)] = value
        if ms > self.newest.get(pair, ms - 1):
            self.newest[pair] = ms
        return "stored"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@settings(PROFILE)
@given(batch=batches())
def test_every_message_ends_in_one_outcome_and_moved_ones_go_as_they_came(
    client: redis.Redis, key_prefix: str, batch: list[Message]
) -> None:
    storage = StorageSettings(key_prefix=f"{key_prefix}{uuid.uuid4().hex[:8]}:")
    validator = ReadingValidator(catalogue=CATALOGUE, clock=lambda: NOW)
    pipeline = ReadingPipeline(validator, ReadingWriter(client, storage))
    model = StoreModel()
    for attempt in ("first", "redelivered"):
        expected: list[str | None] = []  # per message: the reason it is moved aside, or None
        counts = dict.fromkeys(OUTCOMES, 0)
        for message in batch:
            outcome, reason = _oracle(validator, model, message)
            counts[outcome] += 1
            event(f"{attempt}: {outcome}")  # --hypothesis-show-statistics shows the mix
            expected.append(reason)
        before = _totals(pipeline)

        channel = RecordingChannel()
        inbox = Inbox(
            IdleConnection(),  # type: ignore[arg-type]
            channel,  # type: ignore[arg-type]
            TopologySettings.from_types(CATALOGUE),
            max_error_length=1000,
            on_delivery=lambda: None,
        )
        for tag, message in enumerate(batch, start=1):
            inbox.on_message(None, *message.as_received(tag))
        deliveries = inbox.take(len(batch))
        rejections = pipeline(deliveries)  # never raises: Redis answers, every input is handled
        inbox.settle(deliveries, rejections)

        after = _totals(pipeline)
        assert {name: after[name] - before[name] for name in OUTCOMES} == counts, attempt
        assert sum(after.values()) - sum(before.values()) == len(batch), "one outcome each"
        assert channel.acks == [(len(batch), len(batch) > 1)], "one ack covers the batch"
        assert channel.commits == 1
        moved = {id(r.delivery): r.reason for r in rejections}
        for message, delivery, reason in zip(batch, deliveries, expected, strict=True):
            assert moved.get(id(delivery)) == reason, (attempt, message)
        assert len(channel.published) == len(rejections)
        for (exchange, key, body, properties), rejection in zip(
            channel.published, rejections, strict=True
        ):
            _check_moved(exchange, key, body, properties, rejection.delivery, rejection.reason)


OUTCOMES = ("stored", "duplicate", "conflict", "expired", "invalid")


def _totals(pipeline: ReadingPipeline) -> dict[str, int]:
    """The pipeline's running totals by outcome (and its retries, which must stay put)."""
    stats = pipeline.stats
    return {
        "stored": stats.stored,
        "duplicate": stats.duplicates,
        "conflict": stats.conflicts,
        "expired": stats.expired,
        "invalid": stats.invalid,
        "retries": stats.storage_retries,
    }


def _oracle(
    validator: ReadingValidator, model: StoreModel, message: Message
) -> tuple[str, str | None]:
    """(outcome, the reason it is moved aside with, or None)."""
    expected_type = sensor_type_from_routing_key(message.routing_key)
    if expected_type is None:
        return "invalid", f"routing key {shown(message.routing_key)} is not ev.sensor.<sensor_type>"
    try:
        reading = validator.parse(message.body, expected_type=expected_type)
    except InvalidReading as exc:
        return "invalid", exc.reason
    outcome = model.outcome(
        reading.sensor_id, reading.sensor_type, timestamp_ms(reading), reading.value
    )
    reason = {"conflict": CONFLICT_REASON, "expired": EXPIRED_REASON}.get(outcome)
    return outcome, reason


def _check_moved(
    exchange: str, key: str, body: bytes, properties: Any, delivery: Delivery, reason: str
) -> None:
    """Byte for byte, to the invalid queue, headers kept and ours added, encodable."""
    assert (exchange, key) == ("", INVALID_QUEUE)
    assert body == delivery.body
    sent = pika.BasicProperties()
    sent.decode(b"".join(properties.encode()))
    headers = dict(sent.headers or {})
    assert headers.pop(HEADER_ROUTING_KEY) == delivery.routing_key
    error = headers.pop(HEADER_ERROR)
    assert isinstance(error, str)
    assert 0 < len(error) <= 1000
    assert error == (reason if len(reason) <= 1000 else reason[:999] + "\u2026")
    kept = {
        k: v for k, v in delivery.headers.items() if k not in (HEADER_ROUTING_KEY, HEADER_ERROR)
    }
    assert headers == kept
    assert sent.delivery_mode == 2
    assert sent.content_type == delivery.content_type

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from ev_consumer.pipeline import ReadingPipeline
from ev_consumer.service import redis_client
from ev_consumer.settings import ConsumerSettings
from ev_messaging import Delivery, Fatal, Rejection, Retry
from ev_schemas import ReadingValidator
from ev_storage import (
    ReadingWriter,
    RedisSettings,
    StorageSettings,
    StorageUnavailable,
    TlsVerificationFailed,
)
from ev_storage.catalogue import shard_of

NOW = datetime(2024, 2, 1, 12, 30, tzinfo=UTC)


def delivery(tag: int, body: bytes, routing_key: str = "ev.sensor.battery") -> Delivery:
    return Delivery(
        delivery_tag=tag,
        routing_key=routing_key,
        body=body,
        message_id=None,
        headers={},
        redelivered=False,
    )


def battery(value: float, minute: int = 0) -> bytes:
    moment = datetime(2024, 2, 1, 12, minute, tzinfo=UTC)
    return json.dumps(
        {
            "sensor_id": "ev_001",
            "sensor_type": "battery",
            "timestamp": moment.isoformat(),
            "value": value,
            "unit": "percentage",
        }
    ).encode()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def pipeline(client: redis.Redis, key_prefix: str) -> ReadingPipeline:
    writer = ReadingWriter(client, StorageSettings(key_prefix=key_prefix))
    return ReadingPipeline(ReadingValidator(clock=lambda: NOW), writer)


@pytest.mark.integration
def test_valid_readings_are_stored_and_invalid_ones_rejected_with_reasons(
    pipeline: ReadingPipeline, client: redis.Redis, key_prefix: str
) -> None:
    batch = [
        delivery(1, battery(80.0, 1)),
        delivery(2, b"{not json"),
        delivery(3, battery(150.0)),
        delivery(4, battery(70.0, 2), routing_key="ev.sensor.speed"),
        delivery(5, battery(75.0, 3), routing_key="something.else"),
        delivery(6, battery(80.0, 1)),
    ]
    rejections = pipeline(batch)
    assert {r.delivery.delivery_tag: r.reason for r in rejections}.keys() == {2, 3, 4, 5}
    reasons = {r.delivery.delivery_tag: r.reason for r in rejections}
    assert "Invalid JSON" in reasons[2]
    assert "outside the plausible range" in reasons[3]
    assert "does not match the routing key's type 'speed'" in reasons[4]
    assert "routing key 'something.else' is not ev.sensor.<sensor_type>" in reasons[5]
    assert (pipeline.stats.stored, pipeline.stats.duplicates, pipeline.stats.invalid) == (1, 1, 4)
    latest = client.get(f"{key_prefix}sensor:{{ev_001}}:battery:latest")
    assert latest is not None
    assert json.loads(latest)["value"] == 80.0


@pytest.mark.integration
def test_redelivered_batch_changes_nothing(
    pipeline: ReadingPipeline, client: redis.Redis, key_prefix: str
) -> None:
    batch = [delivery(i, battery(50.0 + i, i)) for i in range(1, 6)]
    pipeline(batch)
    keys = sorted(client.scan_iter(match=f"{key_prefix}*"))
    before = {key: client.dump(key) for key in keys}
    pipeline(batch)
    assert {key: client.dump(key) for key in keys} == before
    assert (pipeline.stats.stored, pipeline.stats.duplicates) == (5, 5)


@pytest.mark.integration
def test_unreachable_redis_asks_the_runner_to_retry(key_prefix: str) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    writer = ReadingWriter(dead, StorageSettings(key_prefix=key_prefix))
    pipeline = ReadingPipeline(ReadingValidator(clock=lambda: NOW), writer)
    with pytest.raises(Retry, match="Redis unavailable"):
        pipeline([delivery(1, battery(80.0)), delivery(2, b"{not json")])
    assert pipeline.stats.stored == 0
    assert pipeline.stats.storage_retries == 1
    # The batch comes back later: its invalid message is counted then, once.
    assert pipeline.stats.invalid == 0


def test_a_batch_of_only_invalid_messages_does_not_touch_redis(key_prefix: str) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    pipeline = ReadingPipeline(
        ReadingValidator(clock=lambda: NOW, max_future_skew=timedelta(0)),
        ReadingWriter(dead, StorageSettings(key_prefix=key_prefix)),
    )
    assert len(pipeline([delivery(1, b"[]"), delivery(2, b"null")])) == 2


@pytest.mark.integration
def test_a_reading_too_old_to_keep_is_moved_aside_not_dropped(
    client: redis.Redis, key_prefix: str
) -> None:
    settings = StorageSettings(key_prefix=key_prefix, history_retention=timedelta(minutes=10))
    pipeline = ReadingPipeline(ReadingValidator(clock=lambda: NOW), ReadingWriter(client, settings))
    assert pipeline([delivery(1, battery(60.0, 30))]) == []
    [rejection] = pipeline([delivery(2, battery(61.0, 5)), delivery(3, battery(62.0, 25))])
    assert rejection.delivery.delivery_tag == 2
    assert "older than the history retention" in rejection.reason
    assert (pipeline.stats.stored, pipeline.stats.expired, pipeline.stats.invalid) == (2, 1, 0)


@pytest.mark.integration
def test_a_republish_with_another_value_is_moved_aside_and_the_first_value_stays(
    pipeline: ReadingPipeline, client: redis.Redis, key_prefix: str
) -> None:
    assert pipeline([delivery(1, battery(60.0, 1))]) == []
    # Another value for the same sensor, type and time conflicts; the same one is a duplicate.
    conflicting = delivery(2, battery(61.0, 1))
    [rejection] = pipeline([conflicting, delivery(3, battery(60.0, 1))])
    assert rejection == Rejection(conflicting, "conflicts with stored value")
    # Exact under redelivery: the conflicting copy again is moved aside again (its first move
    # was not committed), the identical one is a plain duplicate.
    [again] = pipeline([delivery(4, battery(60.0, 1)), delivery(5, battery(61.0, 1))])
    assert again.delivery.delivery_tag == 5
    assert again.reason == "conflicts with stored value"
    stats = pipeline.stats
    assert (stats.stored, stats.duplicates, stats.conflicts, stats.invalid) == (1, 2, 2, 0)
    latest = client.get(f"{key_prefix}sensor:{{ev_001}}:battery:latest")
    assert latest is not None
    assert json.loads(latest)["value"] == 60.0


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[int]:
    """The port of a private redis-server that wants a password nobody here knows."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("this test needs redis-server on PATH")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(
        [*argv, "--dir", str(tmp_path), "--requirepass", uuid.uuid4().hex],
        stdout=subprocess.DEVNULL,
    )
    probe = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe.ping()
        except redis.AuthenticationError:
            break  # up, and refusing
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    probe.close()
    yield port
    server.kill()
    server.wait()


def test_refused_credentials_are_fatal_not_a_reason_to_retry(
    locked_redis: int, key_prefix: str
) -> None:
    anonymous = redis.Redis(port=locked_redis, socket_timeout=2)
    pipeline = ReadingPipeline(
        ReadingValidator(clock=lambda: NOW),
        ReadingWriter(anonymous, StorageSettings(key_prefix=key_prefix)),
    )
    with pytest.raises(Fatal, match="Redis refused"):
        pipeline([delivery(1, battery(80.0))])
    anonymous.close()


def test_redis_tls_settings_reach_the_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used before connecting")
    client = redis_client(ConsumerSettings(redis=RedisSettings(tls=True, tls_ca_file=ca)))
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == str(ca)
    assert kwargs["ssl_cert_reqs"] == "required"
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    client.close()


class _RejectingWriter:
    """A writer whose Redis presents a certificate that does not verify."""

    def store_many(self, readings: object) -> list[object]:
        raise TlsVerificationFailed("certificate has expired", "redis:6380")


def test_a_redis_certificate_that_does_not_verify_is_fatal() -> None:
    pipeline = ReadingPipeline(ReadingValidator(clock=lambda: NOW), _RejectingWriter())  # type: ignore[arg-type]
    with pytest.raises(Fatal, match="certificate has expired") as raised:
        pipeline([delivery(1, battery(80.0))])
    assert isinstance(raised.value.__cause__, TlsVerificationFailed)
    assert pipeline.stats.storage_retries == 0


@pytest.mark.integration
def test_the_catalogue_is_updated_before_the_batch_is_acknowledged(
    client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = ReadingWriter(client, StorageSettings(key_prefix=key_prefix))
    pipeline = ReadingPipeline(ReadingValidator(clock=lambda: NOW), writer)
    ids_key = f"{writer.keys.catalogue_shard(shard_of('ev_001', writer.catalogue.shards))}:ids"
    batch = [delivery(1, battery(80.0, 1))]

    def lost(entries: object) -> None:
        raise StorageUnavailable("Connection reset by peer")

    # The reading is stored, then the catalogue's update fails: the batch is not acknowledged.
    monkeypatch.setattr(writer.catalogue, "update", lost)
    with pytest.raises(Retry, match="Connection reset by peer"):
        pipeline(batch)
    assert client.exists(writer.keys.history("ev_001", "battery"))
    assert client.zrange(ids_key, 0, -1) == []
    # Redelivered: a duplicate, which puts the sensor in the catalogue before the ack.
    monkeypatch.undo()
    assert pipeline(batch) == []
    assert client.zrange(ids_key, 0, -1) == [b"ev_001"]
    assert (pipeline.stats.stored, pipeline.stats.duplicates) == (0, 1)

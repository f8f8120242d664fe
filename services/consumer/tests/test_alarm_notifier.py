"""The alarm notifier against the real Redis and local webhook receivers that fail on purpose
(500s, then a refused connection) and recover: no transition lost, each delivered with its
idempotency key and a valid signature, counted in the metrics; a notifier stopped mid-way and a
new one finishing; and ingest going on while the only webhook is down (the real consumer)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from _consumer_process import ConsumerProcess, free_port, publish, readings, wait_until
from _webhook_receiver import WebhookReceiver
from prometheus_client import generate_latest

from ev_consumer.alarm_notifier import AlarmNotifier
from ev_consumer.metrics import ConsumerMetrics
from ev_consumer.webhooks import WebhookSender, webhook_targets
from ev_schemas import Reading, default_catalogue
from ev_storage import AlarmOutbox, KeyLayout, ReadingWriter, StorageSettings

pytestmark = pytest.mark.integration

SECRET = b"test-secret"
T0_MS = 1_706_788_800_000


@dataclass(frozen=True)
class Rule:
    """A threshold rule as the write script takes it (``ev_schemas.AlarmRule`` has these)."""

    id: str = "fast"
    sensor_type: str = "speed"
    sensor_prefix: str = ""
    above: float | None = 150.0
    below: float | None = None
    effective_clear_below: float | None = 50.0
    effective_clear_above: float | None = None
    for_ms: int | None = None
    readings: int | None = None
    severity: str = "critical"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=2.0) as http:
        yield http


def _speed(sensor_id: str, ms: int, value: float) -> Reading:
    from datetime import UTC, datetime, timedelta

    return Reading(
        sensor_id=sensor_id,
        sensor_type="speed",
        timestamp=datetime.fromtimestamp(T0_MS / 1000, UTC) + timedelta(milliseconds=ms),
        value=value,
        unit=default_catalogue()["speed"].unit,
    )


def _store_transitions(client: redis.Redis, key_prefix: str, sensors: int) -> set[str]:
    """Raise and clear one episode per sensor; the outbox's idempotency keys."""
    settings = StorageSettings(key_prefix=key_prefix, alarm_outbox=True)
    writer = ReadingWriter(client, settings, [Rule()])
    for n in range(sensors):
        writer.store_many([_speed(f"ev_{n}", 0, 200.0), _speed(f"ev_{n}", 1000, 10.0)])
    return _outbox_keys(client, KeyLayout(key_prefix))


def _outbox_keys(client: redis.Redis, keys: KeyLayout) -> set[str]:
    return {f[b"idempotency_key"].decode() for _, f in client.xrange(keys.alarm_outbox())}


def _notifier(
    client: redis.Redis, key_prefix: str, http: httpx.Client, urls: list[str], name: str
) -> AlarmNotifier:
    return AlarmNotifier(
        AlarmOutbox(client, KeyLayout(key_prefix)),
        webhook_targets(urls),
        WebhookSender(http, SECRET),
        name=name,
        block_s=0.05,
        claim_after_s=0.5,
        backoff_base_s=0.02,
        backoff_cap_s=0.2,
        backlog_every_s=0.0,
    )


@contextlib.contextmanager
def _receiving(*receivers: WebhookReceiver) -> Iterator[None]:
    try:
        yield
    finally:
        for receiver in receivers:
            receiver.stop()


def test_failing_webhooks_recover_and_get_every_transition(
    client: redis.Redis, key_prefix: str, http: httpx.Client
) -> None:
    flaky = WebhookReceiver(SECRET, fail_first=5).start()  # 500 five times
    late = WebhookReceiver(SECRET, port=free_port())  # refused until started
    with _receiving(flaky, late):
        keys = _store_transitions(client, key_prefix, sensors=4)
        assert len(keys) == 8
        notifier = _notifier(client, key_prefix, http, [flaky.url, late.url], "one")
        metrics = ConsumerMetrics()
        metrics.track_notifier(notifier)
        late_label = f"127.0.0.1:{late.port}"
        with notifier.running(retry_s=0.05):
            wait_until(lambda: notifier.stats.targets[late_label].failed >= 3, 10, "refusals")
            late.start()
            wait_until(lambda: flaky.keys() == keys and late.keys() == keys, 20, "deliveries")
            wait_until(lambda: notifier.stats.pending == 0, 10, "nothing pending")
        # Every transition once at least, each copy of one with its key and the same body.
        for receiver in (flaky, late):
            assert receiver.bad_signatures == 0
            bodies = dict(receiver.accepted)
            assert all(bodies[key] == body for key, body in receiver.accepted)
        kinds = sorted(body["kind"] for body in dict(late.accepted).values())
        assert kinds == ["cleared"] * 4 + ["raised"] * 4
        body = next(b for _, b in late.accepted if b["kind"] == "cleared")
        assert body["began"] == "2024-02-01T12:00:00.000Z"
        assert body["cleared"] == "2024-02-01T12:00:01.000Z"
        assert body["alarm_id"] == f"{body['sensor_id']}~speed~fast~{T0_MS}"
        assert body["severity"] == "critical"
        assert body["at"].endswith("Z")
        scraped = generate_latest(metrics.registry).decode()
        flaky_label = f"127.0.0.1:{flaky.port}"
        assert notifier.stats.targets[flaky_label].failed == 5
        assert (
            f'ev_consumer_webhook_deliveries_total{{outcome="failed",webhook="{flaky_label}"}} 5.0'
            in scraped
        )
        delivered = notifier.stats.targets[late_label].delivered
        assert delivered >= 8
        assert f'outcome="delivered",webhook="{late_label}"}} {delivered:.1f}' in scraped
        assert "ev_consumer_webhook_last_success_timestamp_seconds{" in scraped
        assert "ev_consumer_alarm_outbox_pending 0.0" in scraped
        assert "token" not in scraped  # labels are hosts, never a URL's path or query


def test_a_new_notifier_finishes_what_a_stopped_one_left(
    client: redis.Redis, key_prefix: str, http: httpx.Client
) -> None:
    good = WebhookReceiver(SECRET).start()
    down = WebhookReceiver(SECRET, port=free_port())
    with _receiving(good, down):
        keys = _store_transitions(client, key_prefix, sensors=3)
        first = _notifier(client, key_prefix, http, [good.url, down.url], "first")
        with first.running(retry_s=0.05):
            wait_until(lambda: good.keys() == keys, 10, "the good webhook served")
        # "first" stopped with everything pending (one webhook down): it never comes back.
        assert AlarmOutbox(client, KeyLayout(key_prefix)).backlog().pending == 6
        accepted_before = len(good.accepted)
        down.start()
        second = _notifier(client, key_prefix, http, [good.url, down.url], "second")
        with second.running(retry_s=0.05):
            wait_until(lambda: down.keys() == keys, 15, "the entries claimed and delivered")
            wait_until(lambda: second.stats.pending == 0, 10, "nothing pending")
        # The webhook that had accepted them was not called again for them.
        assert len(good.accepted) == accepted_before


def test_a_webhook_that_is_down_does_not_hold_up_ingest(
    start_consumer: Callable[..., ConsumerProcess],
    amqp_url: str,
    client: redis.Redis,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.json"
    rule = {"id": "fast", "sensor_type": "speed", "above": 150, "clear_below": 50}
    rules.write_text(json.dumps({"rules": [rule]}), encoding="utf-8")
    port = free_port()
    receiver = WebhookReceiver(SECRET, port=port)
    with _receiving(receiver):
        consumer = start_consumer(
            ALARM_RULES_FILE=str(rules),
            ALARM_WEBHOOK_URLS=receiver.url,
            ALARM_WEBHOOK_SECRET=SECRET.decode(),
        )
        keys = KeyLayout(key_prefix)
        history = keys.history("ev_svc", "speed")
        started = time.monotonic()
        publish(amqp_url, readings(1000))
        outbox = keys.alarm_outbox()
        # Every reading stored and every transition in the outbox while the webhook refuses.
        wait_until(lambda: client.xlen(outbox) >= 9, 20, "the transitions in the outbox")
        wait_until(lambda: client.exists(history) == 1, 5, "the history")
        assert time.monotonic() - started < 20
        assert receiver.requests == 0
        transitions = _outbox_keys(client, keys)
        receiver.start()
        wait_until(lambda: receiver.keys() == transitions, 30, "the deliveries once it is up")
        assert consumer.stop() == 0, consumer.output()

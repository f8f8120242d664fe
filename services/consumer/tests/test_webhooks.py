"""Webhook bodies, signatures (verified as docs/alarms.md shows), labels and backoff."""

from __future__ import annotations

import hashlib
import hmac
import json

from ev_consumer.webhooks import Backoff, payload, signature, webhook_targets
from ev_storage import AlarmTransition, OutboxEntry


def _entry(cleared_ms: int | None) -> OutboxEntry:
    transition = AlarmTransition(
        "cleared" if cleared_ms else "raised",
        "ev_001",
        "battery",
        "battery-low",
        1_706_788_800_000,
        1_706_788_802_500,
        cleared_ms,
        "critical",
        1_706_788_900_123,
    )
    return OutboxEntry("1-0", "0123456789abcdef0123456789abcdef", transition)


def test_the_body_names_the_transition_in_rfc3339_utc() -> None:
    body = json.loads(payload(_entry(None)))
    assert body == {
        "idempotency_key": "0123456789abcdef0123456789abcdef",
        "kind": "raised",
        "alarm_id": "ev_001~battery~battery-low~1706788800000",
        "sensor_id": "ev_001",
        "sensor_type": "battery",
        "rule_id": "battery-low",
        "severity": "critical",
        "began": "2024-02-01T12:00:00.000Z",
        "raised": "2024-02-01T12:00:02.500Z",
        "cleared": None,
        "at": "2024-02-01T12:01:40.123Z",
    }
    assert json.loads(payload(_entry(1_706_788_860_000)))["cleared"] == "2024-02-01T12:01:00.000Z"


def test_the_signature_verifies_as_documented() -> None:
    secret, body = b"s3cret", payload(_entry(None))
    header = signature(secret, body)
    # The receiver's side, as in docs/alarms.md:
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(header, expected)
    assert not hmac.compare_digest(signature(b"other", body), expected)


def test_labels_are_hosts_and_unique() -> None:
    targets = webhook_targets(
        ["https://h.example/a?token=x", "https://h.example/b", "http://h.example:8080/c"]
    )
    assert [t.label for t in targets] == ["h.example", "h.example#2", "h.example:8080"]
    assert len({t.fingerprint for t in targets}) == 3
    assert all("token" not in t.fingerprint for t in targets)


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    low, high = Backoff(0.5, 4.0, rng=lambda: 0.0), Backoff(0.5, 4.0, rng=lambda: 1.0)
    assert [high.failed(0.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [low.failed(0.0) for _ in range(3)] == [0.25, 0.5, 1.0]
    assert high.waiting(3.9)
    assert not high.waiting(4.0)
    high.succeeded()
    assert high.failures == 0
    assert not high.waiting(0.0)

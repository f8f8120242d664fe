"""Alarm webhooks: the targets, the signed JSON body of a transition, one POST, and the backoff
of a failing target (docs/alarms.md#notifications)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from ev_storage import OutboxEntry

#: The header that carries ``sha256=<hex HMAC-SHA256 of the body>``.
SIGNATURE_HEADER = "X-EV-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook URL, with a label for metrics and logs (its host: the URL's path or query may
    hold a token) and a fingerprint that names it in Redis (a hash, never the URL)."""

    url: str
    label: str
    fingerprint: str


def webhook_targets(urls: Sequence[str]) -> list[WebhookTarget]:
    """The targets of ``urls``; labels are the hosts (``host:port`` with a port), made unique
    by ``#2``, ``#3`` ... for URLs on the same host."""
    targets: list[WebhookTarget] = []
    seen: dict[str, int] = {}
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        label = f"{host}:{parts.port}" if parts.port else host
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}#{seen[label]}"
        fingerprint = hashlib.sha256(url.encode()).hexdigest()[:16]
        targets.append(WebhookTarget(url, label, fingerprint))
    return targets


def _rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(entry: OutboxEntry) -> bytes:
    """The JSON body of an entry's notification (compact, UTF-8)."""
    t = entry.transition
    if t is None:
        raise ValueError(f"outbox entry {entry.entry_id} has no transition")
    document = {
        "idempotency_key": entry.idempotency_key,
        "kind": t.kind,
        "alarm_id": f"{t.sensor_id}~{t.sensor_type}~{t.rule_id}~{t.began_ms}",
        "sensor_id": t.sensor_id,
        "sensor_type": t.sensor_type,
        "rule_id": t.rule_id,
        "severity": t.severity,
        "began": _rfc3339(t.began_ms),
        "raised": _rfc3339(t.raised_ms),
        "cleared": _rfc3339(t.cleared_ms),
        "at": _rfc3339(t.at_ms),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-EV-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSender:
    """POSTs signed bodies with a caller's :class:`httpx.Client` (its timeouts apply)."""

    def __init__(self, client: httpx.Client, secret: bytes) -> None:
        self._client, self._secret = client, secret

    def post(self, target: WebhookTarget, key: str, body: bytes) -> str | None:
        """None when the target accepted the body (a 2xx), else why not, in a few words."""
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: key,
            SIGNATURE_HEADER: signature(self._secret, body),
        }
        try:
            response = self._client.post(target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"


class Backoff:
    """A failing target's retry delays: ``base_s`` doubling to ``cap_s``, each scaled by a
    random factor in [0.5, 1] (jitter: notifiers do not retry in step)."""

    def __init__(
        self,
        base_s: float = 0.5,
        cap_s: float = 60.0,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._base_s, self._cap_s, self._rng = base_s, cap_s, rng
        self.failures = 0
        self.next_at = 0.0

    def failed(self, now: float) -> float:
        """Count a failure at ``now`` (monotonic seconds); the delay before the next attempt."""
        self.failures += 1
        delay = min(self._cap_s, self._base_s * 2.0 ** min(self.failures - 1, 30))
        delay *= 0.5 + 0.5 * self._rng()
        self.next_at = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.next_at = 0, 0.0

    def waiting(self, now: float) -> bool:
        """Whether the target is still backing off at ``now``."""
        return now < self.next_at

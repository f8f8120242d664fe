"""The alarm outbox: a Redis stream of alarm transitions for webhook notifications.

:class:`~ev_storage.alarm_index.AlarmIndex` appends each transition it indexes
(:func:`queue_transition`) in the same pipeline, before the readings are acknowledged, so no
transition the index knows is missing here. A transition applied twice (a writer that died
before acknowledging it, docs/alarms.md) is appended twice with the same idempotency key.

Notifiers read the stream in one consumer group (:data:`GROUP`): each entry goes to one of
them, stays pending until acknowledged, and is claimed by another after its holder went
silent. Which webhooks accepted an entry is kept beside it (``...:sent:<entry id>``, a set
with an expiry), so a restarted notifier calls none of them again. The stream is capped at
about :data:`OUTBOX_MAXLEN` entries: beyond that many undelivered transitions the oldest are
trimmed, and a notifier reports them dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

from ev_storage.alarm_transitions import AlarmTransition
from ev_storage.clients import SyncClient
from ev_storage.errors import redis_errors_translated
from ev_storage.keys import KeyLayout

#: About this many entries are kept (``XADD ... MAXLEN ~``): delivered ones and, while a
#: webhook is down, undelivered ones; older entries are trimmed, delivered or not.
OUTBOX_MAXLEN = 100_000
#: The consumer group every notifier joins.
GROUP = "notifier"
#: How long the record of which webhooks accepted an entry outlives a notifier that died.
SENT_TTL_MS = 7 * 24 * 3600 * 1000


def idempotency_key(sensor_id: str, line: str) -> str:
    """A transition's key: the same for the same transition applied again (32 hex digits)."""
    return hashlib.sha256(f"{sensor_id}\n{line}".encode()).hexdigest()[:32]


def queue_transition(pipe: Any, keys: KeyLayout, line: str, t: AlarmTransition) -> None:
    """Append one transition (its pending ``line`` as the script wrote it) to ``pipe``."""
    fields = {
        "idempotency_key": idempotency_key(t.sensor_id, line),
        "kind": t.kind,
        "sensor_id": t.sensor_id,
        "sensor_type": t.sensor_type,
        "rule_id": t.rule_id,
        "severity": t.severity,
        "began_ms": t.began_ms,
        "raised_ms": t.raised_ms,
        "cleared_ms": "" if t.cleared_ms is None else t.cleared_ms,
        "at_ms": t.at_ms,
    }
    pipe.xadd(keys.alarm_outbox(), fields, maxlen=OUTBOX_MAXLEN, approximate=True)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox entry: its stream id, idempotency key and transition; ``transition`` is None
    for an entry trimmed from the stream before it was delivered (or not one of ours)."""

    entry_id: str
    idempotency_key: str
    transition: AlarmTransition | None


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """The group's backlog: entries not yet read by any notifier (``lag``; None when Redis
    cannot tell), and read but not yet acknowledged (``pending``)."""

    lag: int | None
    pending: int


class AlarmOutbox:
    """A notifier's side of the outbox (synchronous): read, claim, record, acknowledge."""

    def __init__(self, client: SyncClient, keys: KeyLayout, group: str = GROUP) -> None:
        self._client, self._keys, self._group = client, keys, group
        self._key = keys.alarm_outbox()

    def ensure_group(self) -> None:
        """Create the stream and the group (from the stream's start) unless they exist."""
        with redis_errors_translated():
            try:
                self._client.xgroup_create(self._key, self._group, id="0", mkstream=True)
            except redis_errors.ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise

    def read_new(self, consumer: str, count: int, block_ms: int | None) -> list[OutboxEntry]:
        """Entries no notifier has read yet, now pending with ``consumer``; waits up to
        ``block_ms`` for one (None: no wait)."""
        with redis_errors_translated():
            reply: Any = self._client.xreadgroup(
                self._group, consumer, {self._key: ">"}, count=count, block=block_ms
            )
        return _read(reply)

    def read_pending(self, consumer: str, after: str, count: int) -> list[OutboxEntry]:
        """Entries pending with ``consumer`` after id ``after`` ("0": from the first)."""
        with redis_errors_translated():
            reply: Any = self._client.xreadgroup(
                self._group, consumer, {self._key: after}, count=count
            )
        return _read(reply)

    def claim_stale(
        self, consumer: str, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[OutboxEntry], list[str]]:
        """Entries pending for ``min_idle_ms`` or longer with any notifier, from ``start``, now
        ``consumer``'s: the cursor to go on from ("0-0": done), the entries, and the ids of
        entries trimmed meanwhile (Redis removes them from the pending list)."""
        with redis_errors_translated():
            reply: Any = self._client.xautoclaim(
                self._key, self._group, consumer, min_idle_ms, start, count=count
            )
        cursor, claimed = _text(reply[0]), reply[1]
        deleted = [_text(item) for item in reply[2]] if len(reply) > 2 else []
        return cursor, _entries(claimed), deleted

    def sent(self, entry_ids: Sequence[str]) -> list[set[str]]:
        """For each entry, the targets recorded as having accepted it."""
        if not entry_ids:
            return []
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for entry_id in entry_ids:
                pipe.smembers(self._keys.alarm_outbox_sent(entry_id))
            replies: list[set[bytes]] = pipe.execute()
        return [{_text(member) for member in reply} for reply in replies]

    def record_sent(self, entry_id: str, target: str) -> None:
        """Record that ``target`` accepted the entry (kept :data:`SENT_TTL_MS`)."""
        key = self._keys.alarm_outbox_sent(entry_id)
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            pipe.sadd(key, target)
            pipe.pexpire(key, SENT_TTL_MS)
            pipe.execute()

    def ack(self, entry_ids: Iterable[str]) -> None:
        """Acknowledge entries (every target accepted them, or they were trimmed) and forget
        which targets did."""
        ids = list(entry_ids)
        if not ids:
            return
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            pipe.xack(self._key, self._group, *ids)
            pipe.delete(*[self._keys.alarm_outbox_sent(entry_id) for entry_id in ids])
            pipe.execute()

    def backlog(self) -> OutboxBacklog:
        """The group's lag and pending count (zero before the group exists)."""
        with redis_errors_translated():
            try:
                groups = self._client.xinfo_groups(self._key)
            except redis_errors.ResponseError:  # no such key yet
                return OutboxBacklog(0, 0)
        for group in groups:
            if _text(group["name"]) == self._group:
                lag = group.get("lag")
                return OutboxBacklog(None if lag is None else int(lag), int(group["pending"]))
        return OutboxBacklog(0, 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _read(reply: Any) -> list[OutboxEntry]:
    # XREADGROUP's reply (RESP2, as redis-py parses it): [[key, [(id, fields), ...]]], or empty.
    return _entries(reply[0][1] if reply else [])


def _entries(raw: Sequence[tuple[Any, Any]]) -> list[OutboxEntry]:
    return [_entry(_text(entry_id), fields) for entry_id, fields in raw]


def _entry(entry_id: str, fields: dict[Any, Any] | None) -> OutboxEntry:
    if not fields:  # trimmed from the stream while pending
        return OutboxEntry(entry_id, "", None)
    f = {_text(name): _text(value) for name, value in fields.items()}
    try:
        transition = AlarmTransition(
            f["kind"],  # type: ignore[arg-type]
            f["sensor_id"],
            f["sensor_type"],
            f["rule_id"],
            int(f["began_ms"]),
            int(f["raised_ms"]),
            int(f["cleared_ms"]) if f["cleared_ms"] else None,
            f["severity"],
            int(f["at_ms"]),
        )
        return OutboxEntry(entry_id, f["idempotency_key"], transition)
    except (KeyError, ValueError):
        # Not written by queue_transition: skipped like a trimmed one, never retried forever.
        return OutboxEntry(entry_id, "", None)

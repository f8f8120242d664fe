"""The alarm notifier: a thread beside the batch loop that delivers the alarm outbox to the
webhooks (docs/alarms.md#notifications).

Every consumer runs one, in the outbox's one consumer group, so each entry goes to one of
them. An entry is acknowledged once every target accepted it (a 2xx); until then it stays
pending with this notifier, or with another one that claims it after ``claim_after_s`` of
silence (a notifier that died). Which targets accepted it is recorded in Redis, so none is
called again for it. A failing target backs off on its own (exponential, with jitter): its
entries wait for it, the other targets' deliveries go on, and ingest never waits for any.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ev_consumer.webhooks import Backoff, WebhookSender, WebhookTarget, payload
from ev_storage import AlarmOutbox, OutboxEntry, StorageError

log = logging.getLogger("ev_consumer")


@dataclass
class TargetStats:
    """One target's counts: accepted deliveries, failed attempts, the last success (Unix s)."""

    delivered: int = 0
    failed: int = 0
    last_success: float | None = None


@dataclass
class NotifierStats:
    """What the metrics export: per target (by label), entries dropped (trimmed from the
    outbox before delivery), and the group's backlog as last polled."""

    targets: dict[str, TargetStats] = field(default_factory=dict)
    dropped: int = 0
    lag: int | None = None
    pending: int | None = None


def consumer_name() -> str:
    """This process's name in the group: host, pid and a random part (a restart is new)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class AlarmNotifier:
    """Delivers the outbox's entries to ``targets`` with ``sender``; see the module."""

    def __init__(
        self,
        outbox: AlarmOutbox,
        targets: Sequence[WebhookTarget],
        sender: WebhookSender,
        *,
        name: str | None = None,
        batch: int = 100,
        block_s: float = 1.0,
        claim_after_s: float = 60.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 60.0,
        backlog_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox, self._targets, self._sender = outbox, list(targets), sender
        self.name = name or consumer_name()
        self._batch, self._block_s, self._claim_after_s = batch, block_s, claim_after_s
        self._backlog_every_s, self._clock = backlog_every_s, clock
        self._backoff = {t.fingerprint: Backoff(backoff_base_s, backoff_cap_s) for t in targets}
        self.stats = NotifierStats(targets={t.label: TargetStats() for t in targets})
        self._group_ready = False
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._pending_after = "0"
        self._next_pending_scan = 0.0
        self._next_backlog = 0.0
        self._stop = threading.Event()

    def run_once(self) -> int:
        """One round: claim entries of silent notifiers, retry this one's pending entries when
        a target is due, read new ones (waiting up to ``block_s``), deliver; entries handled."""
        if not self._group_ready:
            self._outbox.ensure_group()
            self._group_ready = True
        now = self._clock()
        entries: dict[str, OutboxEntry] = {}
        if now >= self._next_claim:
            self._claim(entries)
        if self._pending_after != "0" or self._retry_due(now) or now >= self._next_pending_scan:
            page = self._outbox.read_pending(self.name, self._pending_after, self._batch)
            entries.update((e.entry_id, e) for e in page)
            if page:
                self._pending_after = page[-1].entry_id
            else:
                self._pending_after = "0"
                self._next_pending_scan = now + self._claim_after_s / 2
        block = None if entries else self._block_ms(now)
        entries.update(
            (e.entry_id, e) for e in self._outbox.read_new(self.name, self._batch, block)
        )
        self._deliver(list(entries.values()))
        self._poll_backlog()
        return len(entries)

    def _claim(self, entries: dict[str, OutboxEntry]) -> None:
        min_idle_ms = int(self._claim_after_s * 1000)
        cursor, claimed, deleted = self._outbox.claim_stale(
            self.name, min_idle_ms, self._claim_cursor, self._batch
        )
        if deleted:
            self._dropped(deleted)
        if claimed:
            log.info("alarm notifier claimed %d entries of a silent notifier", len(claimed))
        entries.update((e.entry_id, e) for e in claimed)
        self._claim_cursor = cursor
        if cursor == "0-0":  # a full pass: the next one when entries may have gone idle again
            self._next_claim = self._clock() + self._claim_after_s / 2

    def _retry_due(self, now: float) -> bool:
        return any(b.failures and not b.waiting(now) for b in self._backoff.values())

    def _block_ms(self, now: float) -> int:
        waits = [b.next_at - now for b in self._backoff.values() if b.failures]
        block_s = min([self._block_s, *waits])
        return max(1, int(block_s * 1000))

    def _deliver(self, entries: list[OutboxEntry]) -> None:
        trimmed = [e.entry_id for e in entries if e.transition is None]
        if trimmed:
            self._outbox.ack(trimmed)
            self._dropped(trimmed)
        live = [e for e in entries if e.transition is not None]
        done_ids: list[str] = []
        for entry, sent in zip(live, self._outbox.sent([e.entry_id for e in live]), strict=True):
            if self._deliver_one(entry, sent):
                done_ids.append(entry.entry_id)
        self._outbox.ack(done_ids)

    def _deliver_one(self, entry: OutboxEntry, sent: set[str]) -> bool:
        """Offer the entry to each target that has not accepted it and is not backing off;
        whether every target has accepted it now."""
        body = payload(entry)
        missing = [t for t in self._targets if t.fingerprint not in sent]
        complete = True
        for n, target in enumerate(missing):
            backoff = self._backoff[target.fingerprint]
            if backoff.waiting(self._clock()):
                complete = False
                continue
            error = self._sender.post(target, entry.idempotency_key, body)
            stats = self.stats.targets[target.label]
            if error is None:
                stats.delivered += 1
                stats.last_success = time.time()
                backoff.succeeded()
                if n < len(missing) - 1 or not complete:  # others still to come: remember
                    self._outbox.record_sent(entry.entry_id, target.fingerprint)
                continue
            stats.failed += 1
            complete = False
            delay = backoff.failed(self._clock())
            log.warning(
                "alarm webhook %s failed: %s; retrying in %.1f s",
                target.label,
                error,
                delay,
                extra={"entry": entry.entry_id, "failures": backoff.failures},
            )
        return complete

    def _dropped(self, entry_ids: list[str]) -> None:
        self.stats.dropped += len(entry_ids)
        log.error(
            "alarm outbox: %d undelivered entries were trimmed (more than the outbox keeps) "
            "or unreadable; their notifications are lost",
            len(entry_ids),
        )

    def _poll_backlog(self) -> None:
        now = self._clock()
        if now < self._next_backlog:
            return
        self._next_backlog = now + self._backlog_every_s
        backlog = self._outbox.backlog()
        self.stats.lag, self.stats.pending = backlog.lag, backlog.pending

    @contextlib.contextmanager
    def running(self, retry_s: float = 1.0) -> Iterator[AlarmNotifier]:
        """Deliver in a daemon thread while the block runs; a Redis error pauses ``retry_s``."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except StorageError as exc:
                    self._group_ready = False  # the outbox may have been deleted meanwhile
                    log.warning("alarm notifier paused: %s", exc)
                    self._stop.wait(retry_s)

        thread = threading.Thread(target=loop, name="ev-alarm-notifier", daemon=True)
        self._stop.clear()
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=30)

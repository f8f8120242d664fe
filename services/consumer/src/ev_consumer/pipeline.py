"""One batch of deliveries: validate, store in one Redis round trip, report the invalid ones."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ev_consumer.alarm_rules import AlarmRulesSource, log_transition
from ev_messaging import Delivery, Fatal, Rejection, Retry, sensor_type_from_routing_key
from ev_schemas import InvalidReading, Reading, ReadingValidator, shown
from ev_storage import (
    AlarmTransition,
    ReadingWriter,
    StorageError,
    StorageRefused,
    StorageUnavailable,
    TlsVerificationFailed,
    WriteOutcome,
)

log = logging.getLogger(__name__)

EXPIRED_REASON = (
    "timestamp is older than the history retention behind the newest stored reading of this "
    "sensor and type; not stored"
)
#: A republish of a stored reading (same sensor, type and timestamp) with another value: the
#: stored value stays (first write wins), and this copy is kept in the invalid queue.
CONFLICT_REASON = "conflicts with stored value"
#: The outcomes whose copy is moved aside rather than acknowledged and forgotten.
_MOVED_ASIDE = {WriteOutcome.EXPIRED: EXPIRED_REASON, WriteOutcome.CONFLICT: CONFLICT_REASON}


@dataclass
class PipelineStats:
    """Running totals since start; every delivery ends in exactly one of these outcomes.

    ``invalid``, ``expired`` and ``conflicts`` readings are moved to the invalid queue.
    """

    stored: int = 0
    duplicates: int = 0
    expired: int = 0
    conflicts: int = 0
    invalid: int = 0
    storage_retries: int = 0
    #: Alarm transitions made by the writes, by kind (raised, cleared, revised, retracted).
    alarm_transitions: Counter[str] = field(default_factory=Counter)


class ReadingPipeline:
    """The consumer's batch handler: bodies in, Redis writes and rejections out.

    Raising :class:`ev_messaging.Retry` when Redis is unavailable tells the runner to keep the
    batch unacknowledged and try it again later: nothing is acknowledged before it is stored.
    """

    def __init__(
        self,
        validator: ReadingValidator,
        writer: ReadingWriter,
        alarm_rules: AlarmRulesSource | None = None,
    ) -> None:
        self._validator = validator
        self._writer = writer
        self._alarm_rules = alarm_rules
        self.stats = PipelineStats()

    def __call__(self, deliveries: Sequence[Delivery]) -> list[Rejection]:
        parsed: list[tuple[Delivery, Reading]] = []
        rejections: list[Rejection] = []
        for delivery in deliveries:
            try:
                parsed.append((delivery, self._parse(delivery)))
            except InvalidReading as exc:
                rejections.append(Rejection(delivery, exc.reason))
        aside: list[tuple[Delivery, Reading, str]] = []
        if parsed:
            if self._alarm_rules is not None:
                self._alarm_rules.refresh(self._writer)
            try:
                outcomes = self._writer.store_many([reading for _, reading in parsed])
            except StorageError as exc:
                if isinstance(exc, TlsVerificationFailed):
                    raise Fatal(str(exc)) from exc
                if isinstance(exc, StorageRefused):
                    # Checked before StorageUnavailable: refused credentials are one too (they
                    # may pass while a password is rotated), refused permissions are not. Either
                    # would have every reading retried forever or, worse, requeued towards the
                    # delivery limit and dead-lettered, although no reading is at fault.
                    reason = f"Redis refused the credentials or permissions: {exc.reason}"
                    raise Fatal(reason) from exc
                if not isinstance(exc, StorageUnavailable):
                    raise  # the runner isolates the reading that fails; see BatchConsumer
                self.stats.storage_retries += 1
                raise Retry(str(exc)) from exc
            self._count(outcomes)
            self._report(self._writer.last_transitions)
            aside = [
                (delivery, reading, _MOVED_ASIDE[outcome])
                for (delivery, reading), outcome in zip(parsed, outcomes, strict=True)
                if outcome in _MOVED_ASIDE
            ]
        # Counted once the batch is through: a batch retried after a Redis outage counts once.
        self.stats.invalid += len(rejections)
        for rejection in rejections:
            delivery = rejection.delivery
            log.info(
                "reading moved aside",
                extra={
                    "routing_key": delivery.routing_key,
                    "message_id": delivery.message_id,
                    "reason": rejection.reason,
                },
            )
        # Too old to keep, or another value for a stored reading: moved aside like an invalid
        # message rather than acknowledged and forgotten, so that every message ends up stored
        # or visible somewhere.
        for delivery, reading, reason in aside:
            rejections.append(Rejection(delivery, reason))
            log.info(
                "reading moved aside",
                extra={
                    "routing_key": delivery.routing_key,
                    "message_id": delivery.message_id,
                    "sensor_id": reading.sensor_id,
                    "reason": reason,
                },
            )
        return rejections

    def _parse(self, delivery: Delivery) -> Reading:
        expected = sensor_type_from_routing_key(delivery.routing_key)
        if expected is None:
            raise InvalidReading(
                f"routing key {shown(delivery.routing_key)} is not ev.sensor.<sensor_type>"
            )
        return self._validator.parse(delivery.body, expected_type=expected)

    def _report(self, transitions: Sequence[AlarmTransition]) -> None:
        """Count and log the alarm transitions the batch's writes made (docs/alarms.md)."""
        for transition in transitions:
            self.stats.alarm_transitions[transition.kind] += 1
            log_transition(transition)

    def _count(self, outcomes: Sequence[WriteOutcome]) -> None:
        for outcome in outcomes:
            if outcome is WriteOutcome.STORED:
                self.stats.stored += 1
            elif outcome is WriteOutcome.DUPLICATE:
                self.stats.duplicates += 1
            elif outcome is WriteOutcome.CONFLICT:
                self.stats.conflicts += 1
            else:
                self.stats.expired += 1

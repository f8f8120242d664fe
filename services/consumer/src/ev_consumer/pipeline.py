"""One batch of deliveries: validate, store in one Redis round trip, report the invalid ones."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ev_messaging import Delivery, Rejection, Retry, sensor_type_from_routing_key
from ev_schemas import InvalidReading, Reading, ReadingValidator, shown
from ev_storage import ReadingWriter, StorageUnavailable, WriteOutcome

log = logging.getLogger(__name__)


@dataclass
class PipelineStats:
    """Running totals since start; every delivery ends in exactly one of these outcomes."""

    stored: int = 0
    duplicates: int = 0
    expired: int = 0
    invalid: int = 0
    storage_retries: int = 0


class ReadingPipeline:
    """The consumer's batch handler: bodies in, Redis writes and rejections out.

    Raising :class:`ev_messaging.Retry` when Redis is unavailable tells the runner to keep the
    batch unacknowledged and try it again later: nothing is acknowledged before it is stored.
    """

    def __init__(self, validator: ReadingValidator, writer: ReadingWriter) -> None:
        self._validator = validator
        self._writer = writer
        self.stats = PipelineStats()

    def __call__(self, deliveries: Sequence[Delivery]) -> list[Rejection]:
        readings: list[Reading] = []
        rejections: list[Rejection] = []
        for delivery in deliveries:
            try:
                readings.append(self._parse(delivery))
            except InvalidReading as exc:
                rejections.append(Rejection(delivery, exc.reason))
        if readings:
            try:
                outcomes = self._writer.store_many(readings)
            except StorageUnavailable as exc:
                self.stats.storage_retries += 1
                raise Retry(f"Redis unavailable: {exc}") from exc
            self._count(outcomes)
        self.stats.invalid += len(rejections)
        for rejection in rejections:
            log.info(
                "invalid reading moved aside",
                extra={"routing_key": rejection.delivery.routing_key, "reason": rejection.reason},
            )
        return rejections

    def _parse(self, delivery: Delivery) -> Reading:
        expected = sensor_type_from_routing_key(delivery.routing_key)
        if expected is None:
            raise InvalidReading(
                f"routing key {shown(delivery.routing_key)} is not ev.sensor.<sensor_type>"
            )
        return self._validator.parse(delivery.body, expected_type=expected)

    def _count(self, outcomes: Sequence[WriteOutcome]) -> None:
        for outcome in outcomes:
            if outcome is WriteOutcome.STORED:
                self.stats.stored += 1
            elif outcome is WriteOutcome.DUPLICATE:
                self.stats.duplicates += 1
            else:
                self.stats.expired += 1

"""What a scenario must end with, what it ended with, and the difference in figures.

Every scenario ends the same way: once its consumers have stopped, nothing can change, and

    published = stored + duplicates absorbed + moved aside (invalid queue + unrouted queue)

where "stored" is the number of distinct readings in Redis (summary counts, per sensor and
type, equal to the publisher's distinct counts, and the history lengths equal to them too) and
"duplicates absorbed" the readings the publisher sent twice on purpose. A reading missing
anywhere is "lost"; one more than expected anywhere is "duplicated".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio

from ev_messaging import INVALID_QUEUE, UNROUTED_QUEUE
from ev_schemas import default_catalogue
from ev_storage import ReadingReader, StorageSettings
from tests.support import queue_depth

Pair = tuple[str, str]  # (sensor_id, sensor_type)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass
class Expectation:
    """What the pipeline must hold once drained."""

    published: int
    stored: dict[Pair, int]
    invalid: int
    unrouted: int
    duplicates: int = 0  # valid readings published again on purpose: stored once

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> Expectation:
        """From the simulator's ``--report-json``."""
        expected = report["expected"]
        stored = {
            (sensor_id, sensor_type): int(seen["count"])
            for sensor_id, types in report["sensors"].items()
            for sensor_type, seen in types.items()
        }
        assert sum(stored.values()) == expected["stored_readings"]
        return cls(
            published=int(report["published"]),
            stored=stored,
            invalid=int(expected["invalid_queue"]),
            unrouted=int(expected["unrouted_queue"]),
            duplicates=int(report["duplicates"]),
        )

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())

    @property
    def sensors(self) -> set[str]:
        return {sensor_id for sensor_id, _ in self.stored}

    def balances(self) -> bool:
        """Whether the publisher's own figures add up (the check of the check)."""
        return self.published == (
            self.stored_total + self.duplicates + self.invalid + self.unrouted
        )


@dataclass
class Observation:
    """What Redis and the side queues hold."""

    stored: dict[Pair, int]  # summary counts
    history: dict[Pair, int]  # history lengths
    invalid: int
    unrouted: int
    left_in_type_queues: int

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())


def observe(
    redis_url: str, key_prefix: str, amqp_url: str, sensors: Iterable[str], queues: Iterable[str]
) -> Observation:
    """Read back everything the scenario's pipeline holds (call after the consumers stopped)."""
    stored, history = asyncio.run(_read_redis(redis_url, key_prefix, sorted(set(sensors))))
    return Observation(
        stored=stored,
        history=history,
        invalid=queue_depth(amqp_url, INVALID_QUEUE),
        unrouted=queue_depth(amqp_url, UNROUTED_QUEUE),
        left_in_type_queues=sum(max(queue_depth(amqp_url, queue), 0) for queue in queues),
    )


async def _read_redis(
    redis_url: str, key_prefix: str, sensors: list[str]
) -> tuple[dict[Pair, int], dict[Pair, int]]:
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=10)
    reader = ReadingReader(client, StorageSettings(key_prefix=key_prefix), default_catalogue())
    stored: dict[Pair, int] = {}
    history: Counter[Pair] = Counter()
    try:
        for sensor_id in sensors:
            summary = await reader.summary(sensor_id)
            if summary is not None:
                for sensor_type, seen in summary.types.items():
                    stored[(sensor_id, sensor_type)] = seen.count
            cursor = None
            while True:
                page = await reader.history(
                    sensor_id, start=_EARLIEST, end=_LATEST, limit=5000, cursor=cursor
                )
                history.update((sensor_id, item.sensor_type) for item in page.items)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
    finally:
        await client.aclose()
    return stored, dict(history)


@dataclass
class Figures:
    """One scenario's figures, as recorded in ``.reports/faults.json``."""

    scenario: str
    published: int
    stored: int
    duplicates_absorbed: int
    moved_aside: int  # invalid + unrouted
    lost: int
    duplicated: int
    faults: int = 0
    recovery_s: list[float] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["recovery_s"] = [round(seconds, 3) for seconds in self.recovery_s]
        result["max_recovery_s"] = round(max(self.recovery_s), 3) if self.recovery_s else None
        return result


def account(
    scenario: str, expected: Expectation, seen: Observation, *, live: int | None = None
) -> Figures:
    """Compare, reading by reading count; ``live`` is the number of live announcements."""
    lost = duplicated = 0
    mismatches = []
    for pair in sorted(expected.stored.keys() | seen.stored.keys() | seen.history.keys()):
        want = expected.stored.get(pair, 0)
        got = (seen.stored.get(pair, 0), seen.history.get(pair, 0))  # summary, history
        lost += max(want - min(got), 0)
        duplicated += max(max(got) - want, 0)
        if got != (want, want):
            mismatches.append(f"{pair[0]}/{pair[1]}: expected {want}, summary and history {got}")
    for sent, kept in ((expected.invalid, seen.invalid), (expected.unrouted, seen.unrouted)):
        lost += max(sent - kept, 0)
        duplicated += max(kept - sent, 0)
    lost += seen.left_in_type_queues  # not stored (yet): as good as lost for the scenario
    if live is not None:  # a reading announced twice was stored twice
        duplicated += max(live - expected.stored_total, 0)
    notes: dict[str, Any] = {} if live is None else {"live_announcements": live}
    if mismatches:
        notes["mismatches"] = mismatches[:20]
    return Figures(
        scenario=scenario,
        published=expected.published,
        stored=seen.stored_total,
        duplicates_absorbed=expected.duplicates,
        moved_aside=seen.invalid + seen.unrouted,
        lost=lost,
        duplicated=duplicated,
        notes=notes,
    )


def assert_exact(
    figures: Figures, expected: Expectation, seen: Observation, *, live: int | None = None
) -> None:
    """The verdict every scenario ends with."""
    assert expected.balances(), f"the publisher's figures do not add up: {expected}"
    if live is not None:
        assert live == expected.stored_total, "each stored reading is announced exactly once"
    assert (figures.lost, figures.duplicated) == (0, 0), figures
    assert seen.stored == expected.stored
    assert seen.history == expected.stored
    assert (seen.invalid, seen.unrouted) == (expected.invalid, expected.unrouted)
    assert seen.left_in_type_queues == 0
    assert figures.published == (
        figures.stored + figures.duplicates_absorbed + figures.moved_aside
    ), figures

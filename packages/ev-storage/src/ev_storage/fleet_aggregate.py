"""Aggregates over many sensors of one type: the sensors a catalogue filter selects, and their
buckets combined into one series or kept per sensor.

Sensors are read concurrently, at most ``concurrency`` at a time, each as
:func:`aggregate_history` reads it (``history_parts``: rollup records where the plan's buckets
allow, raw readings streamed elsewhere, about one chunk held per sensor being read). The
combined series is folded as the chunks arrive by ``ev_schemas.FleetFolder``, whose sums are
exact and whose first and last follow (timestamp, sensor id), so the answer does not depend on
which sensor's reads finish first: memory grows with the buckets, not with the sensors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from ev_schemas import AggregationPlan, BucketValues, FleetFolder
from ev_storage.aggregate import (
    AGGREGATE_CHUNK_ROWS,
    RollupPart,
    aggregate_history,
    history_parts,
)
from ev_storage.catalogue_reader import CatalogueFilter, CatalogueReader
from ev_storage.errors import InvalidArgument
from ev_storage.reader import ReadingReader

T = TypeVar("T")
#: Sensors read at the same time: enough to overlap round trips, few enough that one request
#: does not take every connection or starve other requests of Redis.
FLEET_CONCURRENCY = 8


class TooManySensors(InvalidArgument):
    """A filter selects more sensors than a request may combine."""

    def __init__(self, selected: int, limit: int) -> None:
        super().__init__(selected, limit)
        self.selected, self.limit = selected, limit

    def __str__(self) -> str:
        return f"the filter selects {self.selected} sensors, more than {self.limit}"


async def select_sensors(
    catalogue: CatalogueReader, where: CatalogueFilter, *, limit: int
) -> list[str]:
    """The ids of every sensor ``where`` selects, in catalogue order (by id); raises
    :class:`TooManySensors` (with the exact count) when there are more than ``limit``."""
    page = await catalogue.page(where, order="id", limit=limit)
    if page.next_cursor is not None:
        # At least limit + 1, even if some expired between the page and the count.
        raise TooManySensors(max(await catalogue.count(where), limit + 1), limit)
    return [item.sensor_id for item in page.items]


async def fleet_aggregate(
    reader: ReadingReader,
    sensor_ids: Sequence[str],
    sensor_type: str,
    plan: AggregationPlan,
    *,
    concurrency: int = FLEET_CONCURRENCY,
    chunk: int = AGGREGATE_CHUNK_ROWS,
    use_rollups: bool = True,
) -> list[BucketValues]:
    """The buckets of ``plan`` over the stored readings of ``sensor_type`` of every sensor in
    ``sensor_ids`` taken together (``ev_schemas.fleet_aggregation`` says how they combine).

    Raises what :func:`aggregate_history` raises.
    """
    folder = FleetFolder.for_plan(plan)

    async def fold(sensor_id: str) -> None:
        parts = history_parts(
            reader, sensor_id, sensor_type, plan, chunk=chunk, use_rollups=use_rollups
        )
        async with contextlib.aclosing(parts):  # type: ignore[type-var]
            async for part in parts:
                if isinstance(part, RollupPart):
                    folder.feed_partial(sensor_id, part.start_ms, part.end_ms, part.aggregate)
                else:
                    folder.feed_rows(sensor_id, part)

    await for_each(sensor_ids, fold, concurrency)
    return folder.buckets(plan.fill)


async def aggregate_each(
    reader: ReadingReader,
    sensor_ids: Sequence[str],
    sensor_type: str,
    plan: AggregationPlan,
    *,
    concurrency: int = FLEET_CONCURRENCY,
) -> list[list[BucketValues]]:
    """:func:`aggregate_history` of each sensor, in the order of ``sensor_ids``."""
    found: list[list[BucketValues]] = [[] for _ in sensor_ids]

    async def one(index: int) -> None:
        found[index] = await aggregate_history(reader, sensor_ids[index], sensor_type, plan)

    await for_each(range(len(sensor_ids)), one, concurrency)
    return found


async def for_each(
    items: Sequence[T], work: Callable[[T], Awaitable[None]], concurrency: int
) -> None:
    """``work(item)`` for every item, at most ``concurrency`` at a time. The first failure
    cancels the rest and is raised as itself (not in an ``ExceptionGroup``), so callers catch
    :class:`StorageError` as from any other read."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgument(f"concurrency must be a positive integer, got {concurrency!r}")
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # shared: each item goes to one worker
            await work(item)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(items))):
                group.create_task(worker())
    except ExceptionGroup as failed:
        # Raised as itself: its own cause (the Redis error) stays; the group only wrapped it.
        raise failed.exceptions[0]  # noqa: B904

"""Time-bucketed aggregates of one sensor type, computed from its stored history.

The range is streamed with :meth:`ReadingReader.history_chunks` (each stored bucket read once,
about one chunk held at a time) and folded by ``ev_schemas.BucketFolder``, so memory grows with
the number of buckets asked for (at most ``ev_schemas.MAX_BUCKETS``), never with the readings.
The answer is, by construction, the aggregate of exactly what ``history`` returns for the range.

Phase 2 (docs/storage.md, "Rollups") adds precomputed rollups kept by the write script; this
module is where a plan whose buckets are whole rollup buckets will read those instead, with the
same answers: the fold's sums are exact, so partial sums combine without a rounding difference.
"""

from __future__ import annotations

import contextlib

from ev_schemas import AggregationPlan, BucketFolder, BucketValues, from_epoch_ms
from ev_storage.reader import ReadingReader

#: Rows fetched per round: larger chunks mean fewer round trips over a long range.
AGGREGATE_CHUNK_ROWS = 5000


async def aggregate_history(
    reader: ReadingReader,
    sensor_id: str,
    sensor_type: str,
    plan: AggregationPlan,
    *,
    chunk: int = AGGREGATE_CHUNK_ROWS,
) -> list[BucketValues]:
    """The buckets of ``plan`` over the stored readings of one sensor type, empty ones as
    ``plan.fill`` says.

    Raises what :meth:`ReadingReader.history_chunks` raises: :class:`UnknownSensorType` or
    :class:`InvalidArgument` before any read, :class:`StorageError` for the reads.
    """
    folder = BucketFolder.for_plan(plan)
    if plan.start_ms < plan.end_ms:
        chunks = reader.history_chunks(
            sensor_id,
            start=from_epoch_ms(plan.start_ms),
            end=from_epoch_ms(plan.end_ms - 1),  # the plan's end is exclusive, history's not
            sensor_types=[sensor_type],
            chunk=chunk,
        )
        async with contextlib.aclosing(chunks):  # type: ignore[type-var]
            async for rows in chunks:
                folder.feed_rows(rows)
    return folder.buckets(plan.fill)

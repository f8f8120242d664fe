"""Time-bucketed aggregates of one sensor type, from its rollups and its raw history.

A plan whose bucket boundaries are all whole minutes (``1m``, ``15m``, ``1h``, ``1d`` in most
zones, ...) reads the history's rollups (``ev_storage.rollups``) for every whole rollup bucket
they cover, quarter hours where the boundaries allow, minutes at the edges, and only the ragged
ends of the range, and what lies before the rollups' start, from the raw readings. Other plans
(``7s``, ``90s``) and histories without rollups read every reading: streamed with
:meth:`ReadingReader.history_chunks`, in memory bounded by the buckets asked for.

Either way the folder (``ev_schemas.BucketFolder``) gets the range in time order and its sums are
exact, so the answer is, bit for bit, the aggregate of exactly what ``history`` returns for the
range.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ev_schemas import (
    AggregationPlan,
    BucketFolder,
    BucketValues,
    PartialAggregate,
    from_epoch_ms,
)
from ev_storage.errors import StorageError
from ev_storage.history import META_FIELD, HistoryMeta, Row
from ev_storage.reader import ReadingReader
from ev_storage.rollups import (
    MINUTE_MS,
    QUARTER_MS,
    SINCE_FIELD,
    Piece,
    cover,
    decode_record,
    parse_since,
    rollup_field,
    rollup_size,
)

#: Rows fetched per round: larger chunks mean fewer round trips over a long range.
AGGREGATE_CHUNK_ROWS = 5000
#: Attempts at a consistent read of the rollups while writes move their start.
_ATTEMPTS = 3
_SIZES = {"minute": MINUTE_MS, "quarter": QUARTER_MS}


@dataclass(frozen=True, slots=True)
class RollupPart:
    """The readings of ``[start_ms, end_ms)``, one rollup bucket, as their aggregates."""

    start_ms: int
    end_ms: int
    aggregate: PartialAggregate


async def history_parts(
    reader: ReadingReader,
    sensor_id: str,
    sensor_type: str,
    plan: AggregationPlan,
    *,
    chunk: int = AGGREGATE_CHUNK_ROWS,
    use_rollups: bool = True,
) -> AsyncIterator[list[Row] | RollupPart]:
    """The stored readings of the plan's range, in time order, as chunks of rows and, where the
    plan's buckets allow, rollup parts: what a fold (``BucketFolder``, ``FleetFolder``) takes.

    Raises :class:`UnknownSensorType` or :class:`InvalidArgument` before any read,
    :class:`StorageError` for the reads.
    """
    if plan.start_ms >= plan.end_ms:
        return
    size = rollup_size(plan.boundaries()) if use_rollups else None
    pieces = [Piece("raw", plan.start_ms, plan.end_ms)]
    records: dict[bytes, bytes | None] = {}
    if size is not None:
        pieces, records = await _rollup_pieces(reader, sensor_id, sensor_type, plan, size)
    for piece in pieces:
        if piece.source == "raw":
            chunks = reader.history_chunks(
                sensor_id,
                start=from_epoch_ms(piece.start_ms),
                end=from_epoch_ms(piece.end_ms - 1),  # pieces end exclusive, history's does not
                sensor_types=[sensor_type],
                chunk=chunk,
            )
            async with contextlib.aclosing(chunks):  # type: ignore[type-var]
                async for rows in chunks:
                    yield rows
            continue
        step = _SIZES[piece.source]
        for start in range(piece.start_ms, piece.end_ms, step):
            field = rollup_field(step, start // step)
            data = records[field]
            if data is not None:
                yield RollupPart(start, start + step, decode_record(data, start, field))


async def aggregate_history(
    reader: ReadingReader,
    sensor_id: str,
    sensor_type: str,
    plan: AggregationPlan,
    *,
    chunk: int = AGGREGATE_CHUNK_ROWS,
    use_rollups: bool = True,
) -> list[BucketValues]:
    """The buckets of ``plan`` over the stored readings of one sensor type, empty ones as
    ``plan.fill`` says. ``use_rollups=False`` reads every reading (the reference path).

    Raises what :func:`history_parts` raises.
    """
    folder = BucketFolder.for_plan(plan)
    parts = history_parts(
        reader, sensor_id, sensor_type, plan, chunk=chunk, use_rollups=use_rollups
    )
    async with contextlib.aclosing(parts):  # type: ignore[type-var]
        async for part in parts:
            if isinstance(part, RollupPart):
                folder.feed_partial(part.start_ms, part.end_ms, part.aggregate)
            else:
                folder.feed_rows(part)
    return folder.buckets(plan.fill)


async def _rollup_pieces(
    reader: ReadingReader, sensor_id: str, sensor_type: str, plan: AggregationPlan, size: int
) -> tuple[list[Piece], dict[bytes, bytes | None]]:
    """The pieces of the plan's range and the rollup records they read, read while the rollups'
    start stood still (a write that moves it deletes the records below it)."""
    everything = [Piece("raw", plan.start_ms, plan.end_ms)]
    for _ in range(_ATTEMPTS):
        since_raw, meta_raw = await reader.history_fields(
            sensor_id, sensor_type, [SINCE_FIELD, META_FIELD]
        )
        since = parse_since(since_raw)
        if since is None or meta_raw is None:  # no rollups (or no history): every reading
            return everything, {}
        meta = HistoryMeta.parse(meta_raw, reader.keys.history(sensor_id, sensor_type))
        pieces = cover(plan.start_ms, plan.end_ms, since, size, meta.newest_ms)
        fields = [
            rollup_field(_SIZES[piece.source], number)
            for piece in pieces
            if piece.source != "raw"
            for number in range(
                piece.start_ms // _SIZES[piece.source], piece.end_ms // _SIZES[piece.source]
            )
        ]
        if not fields:
            return pieces, {}
        values = await reader.history_fields(
            sensor_id, sensor_type, [SINCE_FIELD, *fields, SINCE_FIELD]
        )
        if values[0] == since_raw and values[-1] == since_raw:
            return pieces, dict(zip(fields, values[1:-1], strict=True))
    raise StorageError(
        f"the rollups of {sensor_id}/{sensor_type} kept moving while being read; try again"
    )

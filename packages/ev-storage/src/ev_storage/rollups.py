"""Rollups: the per-minute and per-quarter-hour aggregates each history keeps (docs/storage.md).

The write script keeps them in the history hash itself, in the same atomic call as the reading:
field ``m<n>`` aggregates the readings of minute ``n`` (``[n * 60 s, (n + 1) * 60 s)``), ``q<n>``
those of quarter hour ``n``, and field ``rollups`` holds S, a multiple of 15 minutes: every
rollup bucket from S on aggregates exactly the readings the history holds in it (no record: none).
This module decodes the records and cuts an aggregation range into the pieces read from raw
readings and from rollups (:func:`cover`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from ev_schemas import PartialAggregate
from ev_storage.errors import StorageError

MINUTE_MS = 60_000
QUARTER_MS = 900_000
SINCE_FIELD = b"rollups"
#: Count, min, max, first (offset in ms, value), last (offset, value); the sum's partials follow.
_HEAD = struct.Struct(">IddIdId")
_PREFIX = {MINUTE_MS: b"m", QUARTER_MS: b"q"}

Source = Literal["raw", "minute", "quarter"]


def is_rollup_field(name: bytes) -> bool:
    """Whether a history field belongs to the rollups (the others are buckets and ``meta``)."""
    return name == SINCE_FIELD or (name[:1] in (b"m", b"q") and name[1:].lstrip(b"-").isdigit())


def rollup_field(size_ms: int, number: int) -> bytes:
    """The field of rollup bucket ``number`` of size :data:`MINUTE_MS` or :data:`QUARTER_MS`."""
    return b"%b%d" % (_PREFIX[size_ms], number)


def decode_record(data: bytes, start_ms: int, field: bytes = b"") -> PartialAggregate:
    """The packed rollup record of the rollup bucket starting at ``start_ms``;
    :class:`StorageError` if it is not one the script wrote."""
    extra = len(data) - _HEAD.size
    if extra < 0 or extra % 8:
        raise StorageError(f"damaged rollup record {field[:40]!r}: {len(data)} bytes")
    count, low, high, first_at, first, last_at, last = _HEAD.unpack_from(data)
    partials = struct.unpack_from(f">{extra // 8}d", data, _HEAD.size)
    return PartialAggregate(
        count, low, high, start_ms + first_at, first, start_ms + last_at, last, partials
    )


def parse_since(raw: bytes | None) -> int | None:
    """The rollups' start S from its field (None: the history keeps no rollups)."""
    if raw is None:
        return None
    try:
        since = int(raw)
    except ValueError:
        raise StorageError(f"damaged rollups field {raw[:40]!r}") from None
    if since % QUARTER_MS:
        raise StorageError(f"damaged rollups field {raw[:40]!r}")
    return since


def rollup_size(boundaries: list[int]) -> int | None:
    """The coarsest rollup size every bucket boundary is a multiple of (None: none is)."""
    for size in (QUARTER_MS, MINUTE_MS):
        if all(bound % size == 0 for bound in boundaries):
            return size
    return None


@dataclass(frozen=True, slots=True)
class Piece:
    """``[start_ms, end_ms)`` of the range, read from the raw readings or from one rollup."""

    source: Source
    start_ms: int
    end_ms: int


def cover(start_ms: int, end_ms: int, since: int, size: int, newest_ms: int) -> list[Piece]:
    """``[start_ms, end_ms)`` cut into consecutive pieces: rollups of ``size`` (or finer) where
    whole rollup buckets at or after ``since`` lie in the range, raw readings at the ragged
    edges. Nothing is stored after ``newest_ms``: rollups stop there (one raw piece, cheap, ends
    the range)."""
    top = min(end_ms, newest_ms + 1)
    low = max(_ceil(start_ms, MINUTE_MS), since)
    high = max(low, (top // MINUTE_MS) * MINUTE_MS)
    if low >= high:
        return [Piece("raw", start_ms, end_ms)] if start_ms < end_ms else []
    pieces = [Piece("raw", start_ms, low), Piece("minute", low, high), Piece("raw", high, end_ms)]
    if size == QUARTER_MS:
        inner_low, inner_high = _ceil(low, QUARTER_MS), (high // QUARTER_MS) * QUARTER_MS
        if inner_low < inner_high:
            pieces[1:2] = [
                Piece("minute", low, inner_low),
                Piece("quarter", inner_low, inner_high),
                Piece("minute", inner_high, high),
            ]
    return [piece for piece in pieces if piece.start_ms < piece.end_ms]


def _ceil(ms: int, size: int) -> int:
    return -(-ms // size) * size

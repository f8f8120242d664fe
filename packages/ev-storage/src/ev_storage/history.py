"""The packed history layout, and gathering one type's readings from it (docs/storage.md).

A history key is a hash of time buckets. Field ``"<n>"`` holds the readings of
``[n * bucket_ms, (n + 1) * bucket_ms)`` as 12-byte records sorted by time: a big-endian uint32
offset in ms from the bucket's start, then the value as a big-endian IEEE 754 double, so values
come back bit for bit. Field ``"meta"`` is ``"<bucket_ms>:<newest ms>:<first bucket>"``; the
rollups (``ev_storage.rollups``) live in the same hash under names of their own. The write
script ``store_reading.lua`` keeps this layout, and the history holds exactly the readings of the
window ``[newest - retention, newest]``; this module reads it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ev_storage.errors import StorageError
from ev_storage.rollups import is_rollup_field

#: One stored reading: ms offset in its bucket, value.
RECORD = struct.Struct(">Id")
META_FIELD = b"meta"
_VALUE = struct.Struct(">d")

#: One history row: (timestamp ms, sensor type, value). Tuples order as history items must.
Row = tuple[int, str, float]


def pack_value(value: float) -> bytes:
    """The 8 bytes the write script stores for ``value`` (exact: no decimal round trip)."""
    return _VALUE.pack(value)


@dataclass(frozen=True, slots=True)
class HistoryMeta:
    """What a history says of itself: its bucket size, newest reading and first (lowest) bucket."""

    bucket_ms: int
    newest_ms: int
    first: int

    @classmethod
    def parse(cls, raw: bytes, key: str) -> HistoryMeta:
        """The meta field's value; :class:`StorageError` if it is not one the script wrote."""
        try:
            bucket_ms, newest_ms, first = (int(part) for part in raw.split(b":"))
        except ValueError:
            raise StorageError(f"damaged history meta {raw[:60]!r} in {key!r}") from None
        if bucket_ms < 1:
            raise StorageError(f"damaged history meta {raw[:60]!r} in {key!r}")
        return cls(bucket_ms, newest_ms, first)


def decode_bucket(
    data: bytes, number: int, bucket_ms: int, low: int, high: int
) -> Iterator[tuple[int, float]]:
    """(ms, value) of the records of bucket ``number`` with ``low <= ms <= high``, ascending."""
    if len(data) % RECORD.size:
        raise StorageError(f"damaged history bucket {number}: {len(data)} bytes")
    base = number * bucket_ms
    first, last = low - base, high - base
    for offset, value in RECORD.iter_unpack(data):
        if offset > last:
            return
        if offset >= first:
            yield base + offset, value


#: One Redis command of a scan, as sent: name, key, arguments.
Command = tuple[str | bytes, ...]


class HistoryScan:
    """Gathers the rows of one history with ``low <= ms <= high``, a few buckets per round.

    Each round, the caller sends the :meth:`commands` (pipelined with other scans') and passes
    their replies to :meth:`receive`, until :attr:`done`: ``want`` rows gathered (rows come in
    ascending order, so they are the first ones) or the range exhausted. The first round also
    asks for the meta field and the number of fields: the meta clamps the range to the buckets
    from the first to the newest (the API's default start is the epoch) and gives the history's
    own bucket size when it differs from ``bucket_ms`` (the reader's setting); when the range
    still spans far more bucket numbers than the history has buckets (sparse data), one
    ``HKEYS`` lists the existing ones.
    Later rounds size themselves on the density seen so far, so a page usually takes one or two
    round trips. A scan may go on after its first ``want`` rows: :meth:`take` hands the rows
    over, and the next rounds gather ``want`` more from where it stopped (an export reads a
    range in chunks that way, each bucket once).
    """

    FIRST_CHUNK = 2
    MAX_CHUNK = 512
    #: List the buckets when the range has this many times more numbers than the history buckets.
    SPARSE = 4

    def __init__(
        self, key: str, sensor_type: str, *, low: int, high: int, want: int, bucket_ms: int
    ) -> None:
        self.key, self.sensor_type = key, sensor_type
        self.rows: list[Row] = []
        self.done = low > high
        self._low, self._high, self._want = low, high, want
        self._meta: HistoryMeta | None = None
        self._bucket_ms = bucket_ms
        # Bucket numbers still to fetch, in order (a range, or the listed ones).
        self._todo: Sequence[int] = (
            () if self.done else range(low // bucket_ms, high // bucket_ms + 1)
        )
        self._asked: Sequence[int] = ()
        self._listing = False
        # Stored buckets looked at and rows found in them (taken ones too): the density estimate.
        self._scanned = 0
        self._found = 0

    @property
    def exhausted(self) -> bool:
        """Every bucket of the range has been fetched: no rows will follow those gathered."""
        return not (self._todo or self._listing)

    def take(self) -> list[Row]:
        """The rows gathered so far, handed over; the scan goes on after them, and is
        :attr:`done` again once it has ``want`` more or the range is exhausted."""
        rows, self.rows = self.rows, []
        self.done = self.exhausted
        return rows

    def commands(self) -> list[Command]:
        """What to send this round (one ``HMGET``, in the first round also ``HLEN``)."""
        if self._listing:
            return [("HKEYS", self.key)]
        count = self._chunk()
        self._asked, self._todo = self._todo[:count], self._todo[count:]
        fields = [str(number).encode() for number in self._asked]
        if self._meta is None:
            return [("HMGET", self.key, META_FIELD, *fields), ("HLEN", self.key)]
        return [("HMGET", self.key, *fields)]

    def receive(self, replies: Sequence[Any]) -> None:
        """Take the replies to the last :meth:`commands`, in order."""
        if self._listing:
            (names,) = replies
            self._listing = False
            numbers = (_bucket_number(name) for name in names)
            self._todo = sorted(n for n in numbers if n is not None and n in self._todo)
        elif self._meta is None:
            values, length = replies
            self._first_round(values[0], values[1:], int(length))
        else:
            self._take(replies[0])
        self.done = len(self.rows) >= self._want or self.exhausted

    def _first_round(self, raw: bytes | None, values: Sequence[bytes | None], length: int) -> None:
        if raw is None:  # no history (never written, or expired)
            self._todo = ()
            return
        meta = self._meta = HistoryMeta.parse(raw, self.key)
        bucket_ms = meta.bucket_ms
        if bucket_ms != self._bucket_ms:
            # Created under another bucket setting: start over with the history's own.
            self._bucket_ms, self._asked, values = bucket_ms, (), []
        stored = range(max(meta.first, self._low // bucket_ms), meta.newest_ms // bucket_ms + 1)
        start = self._low // bucket_ms + len(self._asked)  # the first bucket not yet asked
        self._todo = range(max(start, stored.start), min(self._high // bucket_ms + 1, stored.stop))
        buckets = length - 1  # every field but the meta
        self._listing = len(self._todo) > max(self.MAX_CHUNK, self.SPARSE * buckets)
        # Buckets outside those stored do not exist: they tell nothing about density.
        self._take(values, sum(1 for number in self._asked if number in stored))

    def _take(self, values: Sequence[bytes | None], scanned: int | None = None) -> None:
        self._scanned += len(self._asked) if scanned is None else scanned
        for number, data in zip(self._asked, values, strict=True):
            if data:
                before = len(self.rows)
                self.rows.extend(
                    (ms, self.sensor_type, value)
                    for ms, value in decode_bucket(
                        data, number, self._bucket_ms, self._low, self._high
                    )
                )
                self._found += len(self.rows) - before

    def _chunk(self) -> int:
        if self._scanned == 0:
            return self.FIRST_CHUNK
        if not self._found:
            return min(self.MAX_CHUNK, 4 * self._scanned)
        missing = self._want - len(self.rows)
        return max(1, min(self.MAX_CHUNK, math.ceil(missing * self._scanned / self._found) + 1))


def _bucket_number(name: bytes) -> int | None:
    """The bucket number a field name stands for; None for the meta field and rollups."""
    if name == META_FIELD or is_rollup_field(name):
        return None
    try:
        return int(name)
    except ValueError:
        raise StorageError(f"damaged history: field {name[:60]!r}") from None

"""Reading what the write script stored: latest readings, history pages, summaries (async)."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from ev_schemas import (
    Catalogue,
    HistoryPage,
    Reading,
    SensorSummary,
    from_epoch_ms,
    history_page_json,
    stored_reading_json,
    to_epoch_ms,
    to_epoch_ms_ceil,
)
from ev_storage.clients import AsyncClient
from ev_storage.cursor import Position, decode_cursor, encode_cursor
from ev_storage.errors import InvalidArgument, UnknownSensorType, redis_errors_translated
from ev_storage.history import HistoryScan, Row
from ev_storage.history_stream import RAW_REPLIES, merged_chunks, run_scans
from ev_storage.keys import KeyLayout, check_sensor_id
from ev_storage.settings import StorageSettings
from ev_storage.summary import summary_from_hash


class ReadingReader:
    """Reads latest readings, history and summaries for the API (asynchronous).

    ``catalogue`` says which types exist and their canonical units. The client is the caller's:
    this class neither connects at construction nor closes it. It accepts clients with or
    without ``decode_responses``, of one server or of a cluster (a call reads one sensor's
    keys: one slot); raw bytes are what it returns either way.
    """

    def __init__(
        self, client: AsyncClient, settings: StorageSettings, catalogue: Catalogue
    ) -> None:
        # redis-py's annotations of asyncio replies change between releases (``Awaitable[T] | T``
        # in some), so calls go through an untyped handle; replies are checked where parsed.
        self._client: Any = client
        self._catalogue = catalogue
        self._units = {sensor_type: catalogue[sensor_type].unit for sensor_type in catalogue}
        self._keys = KeyLayout(settings.key_prefix)
        # A guess: each history knows its own bucket size (see HistoryScan).
        self._bucket_ms = settings.history_bucket_ms

    @property
    def keys(self) -> KeyLayout:
        return self._keys

    async def ping(self) -> float:
        """Round-trip time of a PING in milliseconds; :class:`StorageUnavailable` if none."""
        started = time.perf_counter()
        with redis_errors_translated():
            await self._client.ping()
        return (time.perf_counter() - started) * 1000.0

    async def latest_raw(self, sensor_id: str, sensor_type: str) -> bytes | None:
        """The stored JSON of the newest reading of one type, as is; None if there is none."""
        key = self._keys.latest(sensor_id, sensor_type)
        with redis_errors_translated():
            raw = await self._client.get(key)
        return _as_bytes(raw)

    async def latest_all_raw(self, sensor_id: str) -> dict[str, bytes]:
        """The stored JSON of the newest reading of each catalogue type that has one."""
        types = list(self._catalogue)
        keys = [self._keys.latest(sensor_id, sensor_type) for sensor_type in types]
        with redis_errors_translated():
            raws: list[Any] = await self._client.mget(keys)
        found = {sensor_type: _as_bytes(raw) for sensor_type, raw in zip(types, raws, strict=True)}
        return {sensor_type: raw for sensor_type, raw in found.items() if raw is not None}

    async def summary(self, sensor_id: str) -> SensorSummary | None:
        """Per-type count, min, max, mean, first and last time; None if the sensor has none."""
        key = self._keys.summary(sensor_id)
        with redis_errors_translated():
            fields: dict[Any, Any] = await self._client.hgetall(key)
        return summary_from_hash(sensor_id, fields, self._catalogue)

    async def history(
        self,
        sensor_id: str,
        *,
        start: datetime,
        end: datetime,
        sensor_types: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> HistoryPage:
        """One page of readings with ``start <= timestamp <= end``, by (timestamp, type).

        ``sensor_types`` None means every catalogue type. ``next_cursor`` continues after the
        page's last item; it is None on the last page. Raises :class:`InvalidCursor`,
        :class:`UnknownSensorType` or :class:`InvalidArgument` for bad arguments.
        """
        rows, next_cursor = await self._page(sensor_id, start, end, sensor_types, limit, cursor)
        items = [self._reading(sensor_id, row) for row in rows]
        return HistoryPage(sensor_id=sensor_id, items=items, next_cursor=next_cursor)

    async def history_json(
        self,
        sensor_id: str,
        *,
        start: datetime,
        end: datetime,
        sensor_types: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> bytes:
        """:meth:`history`'s page as its JSON (``HistoryPage.model_dump_json()``), built from
        the stored records without a model per item: what the API returns."""
        rows, next_cursor = await self._page(sensor_id, start, end, sensor_types, limit, cursor)
        items = (
            stored_reading_json(sensor_id, sensor_type, ms, value, self._units[sensor_type])
            for ms, sensor_type, value in rows
        )
        return history_page_json(sensor_id, items, next_cursor)

    async def history_rows(
        self,
        sensor_id: str,
        *,
        start: datetime,
        end: datetime,
        sensor_types: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[Row], str | None]:
        """:meth:`history`'s page as rows ``(ms, type, value)`` and its ``next_cursor``, for
        callers that write another format (units: the catalogue's)."""
        return await self._page(sensor_id, start, end, sensor_types, limit, cursor)

    def history_chunks(
        self,
        sensor_id: str,
        *,
        start: datetime,
        end: datetime,
        sensor_types: Sequence[str] | None = None,
        chunk: int = 1000,
    ) -> AsyncIterator[list[Row]]:
        """Every row ``(ms, type, value)`` with ``start <= timestamp <= end``, by (timestamp,
        type), in lists of a few times ``chunk`` rows at most: an export of any length in
        bounded memory, each stored bucket read once (``ev_storage.history_stream``).

        Arguments are checked here, before the first read (:class:`UnknownSensorType`,
        :class:`InvalidArgument`); reads raise :class:`StorageError` as the other methods do.
        Rows stored after the iteration passed their place are not included.
        """
        check_sensor_id(sensor_id)
        types = self._types(sensor_types)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise InvalidArgument(f"chunk must be a positive integer, got {chunk!r}")
        start_ms, end_ms = _ceil_ms(start, "start"), _floor_ms(end, "end")
        scans = [
            HistoryScan(
                self._keys.history(sensor_id, sensor_type),
                sensor_type,
                low=start_ms,
                high=end_ms,
                want=chunk,
                bucket_ms=self._bucket_ms,
            )
            for sensor_type in types
        ]
        return merged_chunks(self._client, scans)

    async def history_fields(
        self, sensor_id: str, sensor_type: str, fields: Sequence[bytes], *, chunk: int = 2000
    ) -> list[bytes | None]:
        """The values (None: absent) of ``fields`` of one history hash, as stored: one round
        trip, ``chunk`` fields per ``HMGET``. For readers of its other parts (rollups)."""
        check_sensor_id(sensor_id)
        (sensor_type,) = self._types([sensor_type])
        key = self._keys.history(sensor_id, sensor_type)
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for first in range(0, len(fields), chunk):
                pipe.execute_command("HMGET", key, *fields[first : first + chunk], **RAW_REPLIES)
            replies: list[list[bytes | None]] = await pipe.execute() if fields else []
        return [value for reply in replies for value in reply]

    async def _page(
        self,
        sensor_id: str,
        start: datetime,
        end: datetime,
        sensor_types: Sequence[str] | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Row], str | None]:
        """The rows of one history page and the cursor after it."""
        check_sensor_id(sensor_id)
        types = self._types(sensor_types)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgument(f"limit must be a positive integer, got {limit!r}")
        start_ms, end_ms = _ceil_ms(start, "start"), _floor_ms(end, "end")
        after = None if cursor is None else decode_cursor(cursor)
        bounds = [
            (sensor_type, _lower_bound(sensor_type, start_ms, after)) for sensor_type in types
        ]
        scans = [
            HistoryScan(
                self._keys.history(sensor_id, sensor_type),
                sensor_type,
                low=low,
                high=end_ms,
                # limit + 1 of each type suffice: the merged page's limit + 1 come from those.
                want=limit + 1,
                bucket_ms=self._bucket_ms,
            )
            for sensor_type, low in bounds
        ]
        await run_scans(self._client, scans)
        merged = heapq.merge(*(scan.rows for scan in scans))
        rows = list(itertools.islice(merged, limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(Position(rows[-1][0], rows[-1][1])) if more else None
        return rows, next_cursor

    def _types(self, sensor_types: Sequence[str] | None) -> list[str]:
        if sensor_types is None:
            return list(self._catalogue)
        if isinstance(sensor_types, str):
            raise InvalidArgument("sensor_types must be a sequence of type names, not one string")
        wanted = list(dict.fromkeys(sensor_types))
        for sensor_type in wanted:
            if sensor_type not in self._catalogue:
                raise UnknownSensorType(sensor_type, list(self._catalogue))
        return wanted

    def _reading(self, sensor_id: str, row: Row) -> Reading:
        ms, sensor_type, value = row
        # Built from our own stored data, already validated on ingest: no second validation.
        return Reading.trusted(
            sensor_id, sensor_type, from_epoch_ms(ms), value, self._catalogue[sensor_type].unit
        )


def _as_bytes(raw: bytes | str | None) -> bytes | None:
    return raw.encode() if isinstance(raw, str) else raw


def _lower_bound(sensor_type: str, start_ms: int, after: Position | None) -> int:
    """The first ms of ``sensor_type`` on the page: items sort by (ms, type); scores are whole."""
    if after is None:
        return start_ms
    first_after = after.ms if sensor_type > after.sensor_type else after.ms + 1
    return max(start_ms, first_after)


def _aware(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidArgument(f"{name} must be a datetime with a time zone, got {moment!r}")
    return moment


def _floor_ms(moment: datetime, name: str) -> int:
    return to_epoch_ms(_aware(moment, name))


def _ceil_ms(moment: datetime, name: str) -> int:
    # Readings have whole milliseconds: one at .000 is before a start at .0005. In whole numbers:
    # datetime arithmetic overflows for a client's start near year 1 or 9999.
    return to_epoch_ms_ceil(_aware(moment, name))

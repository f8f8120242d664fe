"""Readings as CSV (RFC 4180): the rows, the completeness marker, and the streamed response.

Columns ``sensor_id,sensor_type,timestamp,value,unit``; lines end with CRLF; a field is quoted
only when it holds a comma, a quote or a line break (never the case for ids, types and
timestamps, which have no such characters, but units come from configuration). Timestamps are
RFC 3339 in UTC with ``Z``, values the shortest text that reads back as the same double.

Completeness: a CSV body cannot say where it ends, and an HTTP/1.1 trailer would need the
server's support (uvicorn's HTTP/1.1 protocols have none) and the client's (curl, browsers and
most CSV tools ignore trailers). So the body's last line is ``# complete: <N> rows``. No data row
can start with ``#`` (a sensor id is letters, digits, ``_``, ``-``, ``.``), and CSV readers skip
such lines when told (pandas ``comment="#"``, R ``comment.char="#"``, DuckDB ``comment='#'``).
A body without that last line is incomplete, whatever the transport said. An export that fails
after its first bytes (Redis lost mid-way) also writes ``# interrupted: ...`` and then aborts the
connection without the final chunk of the chunked encoding, so HTTP clients report an error
(curl exits 18, httpx raises ``RemoteProtocolError``) instead of a short file that looks whole.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Send

from ev_api.errors import AnswerAborted
from ev_schemas import format_epoch_ms, shown
from ev_storage import Row, StorageError

log = logging.getLogger(__name__)

CSV_MEDIA_TYPE = "text/csv"
COLUMNS = ("sensor_id", "sensor_type", "timestamp", "value", "unit")
HEADER = (",".join(COLUMNS) + "\r\n").encode()
#: Rows read per type and round: what an export holds is about this many rows per type.
EXPORT_CHUNK_ROWS = 1000
_NEEDS_QUOTES = frozenset(',"\r\n')

EXAMPLE = (
    "sensor_id,sensor_type,timestamp,value,unit\r\n"
    "ev_001,battery,2024-02-01T12:00:00Z,85.5,percentage\r\n"
    "ev_001,speed,2024-02-01T12:00:00Z,42.0,km/h\r\n"
    "ev_001,battery,2024-02-01T12:00:01.250Z,85.4,percentage\r\n"
    "# complete: 3 rows\r\n"
)


class ExportInterrupted(AnswerAborted):
    """An export failed after its answer started: the connection must be dropped, not closed
    cleanly, so that the client cannot take the partial body for a whole one."""

    def __init__(self, sensor_id: str, rows: int, reason: str) -> None:
        super().__init__(sensor_id, rows, reason)
        self.sensor_id, self.rows, self.reason = sensor_id, rows, reason

    def __str__(self) -> str:
        return (
            f"CSV export of sensor {shown(self.sensor_id)} interrupted after "
            f"{self.rows} rows: {self.reason}"
        )


def csv_field(text: str) -> str:
    """``text`` as an RFC 4180 field: quoted, with quotes doubled, when it needs it."""
    if _NEEDS_QUOTES.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def complete_marker(rows: int) -> bytes:
    """The last line of a complete export."""
    return b"# complete: %d rows\r\n" % rows


_MINUTE_MS = 60_000
#: "SS" of each second of a minute, and ".mmmZ" (or "Z" for a whole second) of each millisecond.
_SECONDS = [f"{second:02d}" for second in range(60)]
_MILLIS = ["Z", *(f".{milli:03d}Z" for milli in range(1, 1000))]
#: Minutes whose "YYYY-MM-DDTHH:MM:" a formatter keeps; forgotten all at once beyond this.
_MINUTES_KEPT = 4096


class CsvRows:
    """Formats one sensor's history rows as CSV lines; each type's fixed fields are made once.

    Timestamps are spelled as ``ev_schemas.format_epoch_ms`` does, a minute's prefix made once
    (a row costs about half of formatting each timestamp whole: it is the export's hot loop).
    """

    def __init__(self, sensor_id: str, units: Mapping[str, str]) -> None:
        head = csv_field(sensor_id) + ","
        self._prefix = {name: f"{head}{csv_field(name)}," for name in units}
        self._suffix = {name: f",{csv_field(unit)}\r\n" for name, unit in units.items()}
        self._minutes: dict[int, str] = {}

    def _minute(self, minute: int) -> str:
        if len(self._minutes) >= _MINUTES_KEPT:
            self._minutes.clear()
        # "...T12:34:00Z" less its "00Z": the minute's prefix, however format_epoch_ms spells it.
        text = self._minutes[minute] = format_epoch_ms(minute * _MINUTE_MS)[:-3]
        return text

    def lines(self, rows: Iterable[Row]) -> bytes:
        prefix, suffix, minutes = self._prefix, self._suffix, self._minutes
        seconds, millis = _SECONDS, _MILLIS
        out: list[str] = []
        append = out.append
        for ms, name, value in rows:
            minute, in_minute = divmod(ms, _MINUTE_MS)
            head = minutes.get(minute) or self._minute(minute)
            second, milli = divmod(in_minute, 1000)
            # repr of a float is the shortest text that reads back as the same double (stored
            # values are finite: validated on ingest).
            append(f"{prefix[name]}{head}{seconds[second]}{millis[milli]},{value!r}{suffix[name]}")
        return "".join(out).encode()


async def first_chunk(chunks: AsyncIterator[list[Row]]) -> list[Row]:
    """The first chunk, read before the answer starts (so that a Redis that is down from the
    start is a 503 like on every route); an empty list when there are no rows at all."""
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return []


async def csv_export(
    sensor_id: str, first: list[Row], chunks: AsyncIterator[list[Row]], rows: CsvRows
) -> AsyncIterator[bytes]:
    """The header, ``first`` and every further row of ``chunks``, then the completeness
    marker, a chunk at a time.

    A storage error ends the export with an ``# interrupted`` line and
    :class:`ExportInterrupted` (logged here in one line); the iteration being closed early
    (the client went away) closes ``chunks``, which stops the reads.
    """
    written = len(first)
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        yield HEADER + rows.lines(first)
        try:
            async for chunk in chunks:
                yield rows.lines(chunk)
                written += len(chunk)
        except StorageError as exc:
            interrupted = ExportInterrupted(sensor_id, written, str(exc))
            log.warning("%s", interrupted)
            yield b"# interrupted: storage unavailable after %d rows\r\n" % written
            raise interrupted from exc
    yield complete_marker(written)


class CsvStreamingResponse(StreamingResponse):
    """A streamed ``text/csv; charset=utf-8`` answer whose iterator is closed however the
    streaming ends (finished, failed, or cancelled because the client disconnected)."""

    media_type = CSV_MEDIA_TYPE

    async def stream_response(self, send: Send) -> None:
        iterator = self.body_iterator
        closing = (
            contextlib.aclosing(iterator)  # type: ignore[type-var]
            if hasattr(iterator, "aclose")
            else contextlib.nullcontext()
        )
        async with closing:
            await super().stream_response(send)


def attachment(filename: str) -> dict[str, str]:
    """``Content-Disposition`` for a download; ``filename`` must be a plain token."""
    return {"Content-Disposition": f'attachment; filename="{filename}"'}

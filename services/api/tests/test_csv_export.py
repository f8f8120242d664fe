"""CSV formatting, the completeness marker and the streaming generator, without Redis."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ev_api.csv_export import (
    EXAMPLE,
    HEADER,
    CsvRows,
    ExportInterrupted,
    complete_marker,
    csv_export,
    csv_field,
    first_chunk,
)
from ev_schemas import format_epoch_ms
from ev_storage import Row, StorageUnavailable

pytestmark = pytest.mark.anyio

MS = 1706788800000  # 2024-02-01T12:00:00Z


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("km/h", "km/h"),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("two\r\nlines", '"two\r\nlines"'),
        ("", ""),
    ],
)
def test_fields_are_quoted_only_when_needed(text: str, field: str) -> None:
    assert csv_field(text) == field
    assert parse(f"{field},x\r\n") == [[text, "x"]]


def test_rows_are_rfc4180_lines_with_utc_timestamps() -> None:
    rows = CsvRows("ev_001", {"battery": "percentage", "speed": "km/h"})
    text = rows.lines(
        [(MS, "battery", 85.5), (MS + 1250, "speed", 1e-05), (MS + 2000, "speed", 80.0)]
    )
    assert text.decode() == (
        "ev_001,battery,2024-02-01T12:00:00Z,85.5,percentage\r\n"
        "ev_001,speed,2024-02-01T12:00:01.250Z,1e-05,km/h\r\n"
        "ev_001,speed,2024-02-01T12:00:02Z,80.0,km/h\r\n"
    )
    assert [float(line[3]) for line in parse(text.decode())] == [85.5, 1e-05, 80.0]


def test_units_that_need_quotes_are_quoted() -> None:
    rows = CsvRows("ev.1-a", {"odd": 'a "unit", really'})
    [line] = parse(rows.lines([(MS, "odd", -0.5)]).decode())
    assert line == ["ev.1-a", "odd", "2024-02-01T12:00:00Z", "-0.5", 'a "unit", really']


def test_the_openapi_example_is_what_the_code_writes() -> None:
    rows = CsvRows("ev_001", {"battery": "percentage", "speed": "km/h"})
    body = rows.lines([(MS, "battery", 85.5), (MS, "speed", 42.0), (MS + 1250, "battery", 85.4)])
    assert EXAMPLE.encode() == HEADER + body + complete_marker(3)


async def _chunks(*chunks: list[Row], fail_after: bool = False) -> AsyncIterator[list[Row]]:
    for chunk in chunks:
        yield chunk
    if fail_after:
        raise StorageUnavailable("connection reset")


async def test_a_complete_export_ends_with_its_marker() -> None:
    rows = CsvRows("ev_001", {"battery": "percentage"})
    chunks = _chunks([(MS + 1, "battery", 2.0)], [(MS + 2, "battery", 3.0)])
    first: list[Row] = [(MS, "battery", 1.0)]
    parts = [part async for part in csv_export("ev_001", first, chunks, rows)]
    assert parts[0] == HEADER + rows.lines(first)
    assert parts[-1] == b"# complete: 3 rows\r\n"
    assert len(parse(b"".join(parts[:-1]).decode())) == 4


async def test_an_empty_export_has_the_header_and_a_zero_marker() -> None:
    rows = CsvRows("ev_001", {"battery": "percentage"})
    assert await first_chunk(_chunks()) == []
    parts = [part async for part in csv_export("ev_001", [], _chunks(), rows)]
    assert b"".join(parts) == HEADER + b"# complete: 0 rows\r\n"


async def test_a_storage_error_ends_without_the_marker_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = CsvRows("ev_001", {"battery": "percentage"})
    chunks = _chunks([(MS, "battery", 1.0)], fail_after=True)
    parts: list[bytes] = []

    async def export() -> None:
        async for part in csv_export("ev_001", [], chunks, rows):
            parts.append(part)

    with (
        caplog.at_level(logging.WARNING, "ev_api.csv_export"),
        pytest.raises(ExportInterrupted) as caught,
    ):
        await export()
    body = b"".join(parts)
    assert b"# complete" not in body
    assert body.endswith(b"# interrupted: storage unavailable after 1 rows\r\n")
    assert isinstance(caught.value.__cause__, StorageUnavailable)
    [record] = caplog.records
    assert record.getMessage() == (
        "CSV export of sensor 'ev_001' interrupted after 1 rows: Redis unavailable: "
        "connection reset"
    )


async def test_the_generator_holds_one_chunk_and_closes_its_source() -> None:
    """Constant memory: a chunk is read from the source only when the previous one was handed
    on, and closing the export (a client that went away) closes the source at once."""
    pulled: list[int] = []
    closed = False

    async def source() -> AsyncIterator[list[Row]]:
        nonlocal closed
        try:
            for n in range(1_000_000):
                pulled.append(n)
                yield [(MS + n, "battery", float(n))]
        finally:
            closed = True

    chunks = source()
    first = await first_chunk(chunks)
    assert pulled == [0]
    export = csv_export("ev_001", first, chunks, CsvRows("ev_001", {"battery": "percentage"}))
    assert (await anext(export)).startswith(HEADER)
    assert pulled == [0]
    for n in range(1, 3):
        await anext(export)
        assert pulled == list(range(n + 1))
    await export.aclose()  # type: ignore[attr-defined]
    assert closed
    assert len(pulled) == 3


@given(st.lists(st.integers(-62_135_596_800_000, 253_402_300_799_999), max_size=50))
def test_timestamps_are_spelled_as_everywhere_else(stamps: list[int]) -> None:
    """The minute cache agrees with ev_schemas.format_epoch_ms over years 0001-9999."""
    rows = CsvRows("ev_001", {"battery": "percentage"})
    text = rows.lines([(ms, "battery", 1.0) for ms in stamps]).decode()
    assert [line.split(",")[2] for line in text.splitlines()] == [
        format_epoch_ms(ms) for ms in stamps
    ]


def test_the_minute_cache_stays_bounded() -> None:
    rows = CsvRows("ev_001", {"battery": "percentage"})
    stamps = [MS + minute * 60_000 + 1 for minute in range(10_000)]
    text = rows.lines([(ms, "battery", 1.0) for ms in stamps]).decode()
    assert len(rows._minutes) <= 4096
    assert text.splitlines()[-1].split(",")[2] == format_epoch_ms(stamps[-1])

from __future__ import annotations

from _bench_helpers import MACHINE, full_results

from ev_bench.report import Results
from ev_bench.table import notes, table


def test_table_has_one_row_per_figure() -> None:
    text = table(full_results())
    lines = text.splitlines()
    assert lines[0].startswith("2026-11-27 09:00Z: 2 cores")
    assert "load average 1.5 at start, 2.0 at end" in lines[0]
    assert lines[2].startswith("| # | figure |")
    assert len(lines) == 2 + 2 + 4 + 3 + 2 + 2 + 3
    assert any("80% of ingest" in line for line in lines)
    assert any("**no**" in line and "p99 <= 20 ms" in line for line in lines)


def test_table_of_a_partial_run_has_only_its_rows() -> None:
    lines = table(Results(date="d", machine=MACHINE)).splitlines()
    assert len(lines) == 4  # the machine line, a blank line, the header and its rule


def test_notes_say_where_the_cores_went() -> None:
    text = notes(full_results())
    assert "- ev_consumer: consumer 0.90" in text
    assert notes(Results(date="d", machine=MACHINE)) == ""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _bench_helpers import MACHINE, full_results

from ev_bench.report import (
    HISTORY_HEADING,
    REQUIRED_KEYS,
    Results,
    append_history,
    as_json,
    history_row,
    targets,
)


def test_targets_are_checked_against_the_run() -> None:
    met = {t.name: t.met for t in targets(full_results())}
    assert met == {
        "ingest_ratio": False,  # medians: 45k / 60k = 0.75
        "two_consumers": True,
        "e2e_p99_ms_2000": False,
        "api_latest": True,
        "history_bytes_per_reading": True,
        "simulator_ratio": True,
        "csv_rows_per_s": None,  # stage 7 not in full_results()
        "csv_rss_growth_mb": None,
        "aggregate_7d_p99_ms": None,  # nor stage 8
        "write_cost_ratio_with_rollups": None,
        "catalogue_page_p99_ms": None,  # nor stage 9
        "catalogue_count_p99_ms": None,
        "catalogue_bytes_per_sensor_type": None,
        "alarm_ingest_ratio": None,  # nor stage 10
    }


def test_targets_not_measured_are_none() -> None:
    results = Results(date="d", machine=MACHINE)
    assert all(t.met is None for t in targets(results))


def test_json_has_the_issue_keys_even_when_not_measured() -> None:
    out = as_json(Results(date="d", machine=MACHINE))
    assert {key: out[key] for key in REQUIRED_KEYS} == dict.fromkeys(REQUIRED_KEYS)
    json.dumps(out)


def test_json_of_a_full_run() -> None:
    out = as_json(full_results())
    assert out["ceiling_per_s"] == 60_000
    assert out["ingest_per_s"] == 45_000
    assert out["ingest_ratio"] == 0.75
    assert out["e2e_p99_ms_2000"] == 25.0
    assert out["e2e_rate_80pct"] == 36_000
    assert out["api_latest_ratio"] == 0.75
    assert out["api_latest_p99_ms"] == 7.0
    assert out["history_bytes_per_reading"] == 13.0
    assert out["simulator_confirmed_per_s"] == 24_000
    assert out["targets"]["e2e_p99_ms_2000"]["met"] is False
    json.dumps(out)


def test_append_history_starts_the_table_once(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nSome text.\n")
    row = history_row(full_results())
    append_history(docs, row)
    append_history(docs, row)
    text = docs.read_text()
    assert text.count(HISTORY_HEADING) == 1
    assert text.count(row) == 2
    assert text.endswith(row + "\n")


def test_history_row_names_the_machine() -> None:
    row = history_row(full_results())
    assert "RabbitMQ 3.10.8" in row
    assert "load average 1.5 at start, 2.0 at end" in row
    assert "45,000 (0.75)" in row


def test_the_alarm_cost_is_the_median_ratio() -> None:
    from ev_bench.alarms import AlarmFigures

    figures = AlarmFigures(without=[10e-6, 12e-6, 11e-6], with_rules=[12e-6, 11e-6, 14e-6])
    assert figures.ratio == pytest.approx(12 / 11)
    results = Results(date="d", machine=MACHINE, alarms=figures)
    met = {t.name: t.met for t in targets(results)}
    assert met["alarm_ingest_ratio"] is True
    assert as_json(results)["alarm_ingest_ratio"] == round(12 / 11, 3)

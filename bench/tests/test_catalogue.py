from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from ev_bench.catalogue import (
    SEEN_AFTER_SHARE,
    T0_MS,
    TYPES,
    CatalogueFigures,
    count_paths,
    fleet_entries,
)
from ev_bench.table import _catalogue_rows
from ev_schemas import to_epoch_ms


def test_the_fleet_has_every_type_of_every_sensor_once() -> None:
    entries = list(fleet_entries(1000, expires_ms=1))
    assert len(entries) == 1000 * len(TYPES)
    assert len({(e.sensor_id, e.sensor_type) for e in entries}) == len(entries)
    assert all(e.sensor_id.startswith("ev_0") for e in entries)


def test_the_combined_count_keeps_the_share_seen_after_its_bound() -> None:
    sensors = 1000
    plain, combined = count_paths(sensors)
    assert plain == "/api/v1/sensors/count"
    query = parse_qs(urlsplit(combined).query)
    bound = to_epoch_ms(datetime.fromisoformat(query["seen_after"][0]))
    last_seen = {}
    for entry in fleet_entries(sensors, expires_ms=1):
        last_seen[entry.sensor_id] = max(last_seen.get(entry.sensor_id, 0), entry.ms)
    kept = sum(1 for ms in last_seen.values() if ms >= bound)
    assert kept == sensors - int(sensors * SEEN_AFTER_SHARE)
    assert bound > T0_MS


def test_figures_and_rows() -> None:
    figures = CatalogueFigures(
        sensors=10, types=3, index_bytes=1500, page_ms=[5.0] * 99 + [30.0],
        count_ms=[2.0, 4.0], health_ms=[1.0],
    )  # fmt: skip
    assert figures.bytes_per_sensor_type == 50.0
    assert figures.count_p99_ms == 4.0
    rows = _catalogue_rows(
        figures,
        {
            "catalogue_page_p99_ms": False,
            "catalogue_count_p99_ms": True,
            "catalogue_bytes_per_sensor_type": True,
        },
    )
    assert len(rows) == 4

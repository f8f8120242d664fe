from __future__ import annotations

import itertools
from collections import Counter

from ev_bench.memory import DUPLICATE_SHARE, disordered, history_readings


def test_history_readings_are_one_sensor_at_1_hz() -> None:
    readings = history_readings(100)
    assert {(r.sensor_id, r.sensor_type) for r in readings} == {("mem_0001", "battery")}
    gaps = {(b.timestamp - a.timestamp).total_seconds() for a, b in itertools.pairwise(readings)}
    assert gaps == {1.0}


def test_disordered_delivers_every_reading_some_twice_out_of_order() -> None:
    readings = history_readings(5000)
    delivered = disordered(readings)
    counts = Counter(r.timestamp for r in delivered)
    assert set(counts) == {r.timestamp for r in readings}
    assert sum(n - 1 for n in counts.values()) == int(len(readings) * DUPLICATE_SHARE)
    assert delivered != sorted(delivered, key=lambda r: r.timestamp)

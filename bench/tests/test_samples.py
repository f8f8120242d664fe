from __future__ import annotations

from ev_bench.samples import latencies_ms, reading_key, watched_count


def test_reading_key_compares_instants_not_spellings() -> None:
    assert reading_key("ev_1", "speed", "2024-02-01T12:00:00Z") == reading_key(
        "ev_1", "speed", "2024-02-01T13:00:00.000+01:00"
    )
    assert reading_key("ev_1", "speed", "2024-02-01T12:00:00.001Z")[2] % 1000 == 1


def test_watched_count_bounds_the_samples() -> None:
    assert watched_count(500, 50) == 10  # capped
    assert watched_count(2000, 50) == 10
    assert watched_count(20_000, 50) == 1  # 400 readings/s of one sensor already
    assert watched_count(1e9, 50) == 1


def test_latencies_match_records_to_arrivals() -> None:
    records = [
        ["ev_1", "speed", "2024-02-01T12:00:00Z", 1_000_000],
        ["ev_1", "speed", "2024-02-01T12:00:01Z", 2_000_000],
    ]
    arrivals = {reading_key("ev_1", "speed", "2024-02-01T12:00:00Z"): 4_500_000}
    found, missing = latencies_ms(records, arrivals)
    assert found == [3.5]
    assert missing == 1

"""Intervals, zones, bucket boundaries (DST included), the max_points ladder, the bucket bound."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ev_schemas import LADDER, MAX_BUCKETS, Grid, Interval, InvalidAggregation, to_epoch_ms
from ev_schemas.intervals import (
    check_bucket_count,
    choose_interval,
    clamp_ms,
    parse_zone,
    utc_zone,
)

HOUR = 3_600_000
DAY = 24 * HOUR
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def ms(*args: int, tz: ZoneInfo | None = None) -> int:
    return to_epoch_ms(datetime(*args, tzinfo=tz or UTC))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "canonical", "length"),
    [
        ("10s", "10s", 10_000),
        ("60s", "1m", 60_000),
        ("90s", "90s", 90_000),
        ("5m", "5m", 300_000),
        ("120m", "2h", 7_200_000),
        ("1h", "1h", HOUR),
        ("24h", "24h", DAY),
        ("1d", "1d", DAY),
        ("7d", "7d", 7 * DAY),
        ("1w", "1w", 7 * DAY),
        ("52w", "52w", 52 * 7 * DAY),
        (" 1m ", "1m", 60_000),
    ],
)
def test_intervals_parse_to_their_canonical_form(text: str, canonical: str, length: int) -> None:
    interval = Interval.parse(text)
    assert str(interval) == canonical
    assert interval.ms == length


@pytest.mark.parametrize(
    "text", ["", "1", "m", "0s", "05m", "1.5h", "-1h", "1ms", "1M", "1y", "1mo", "1 h", "1hh"]
)
def test_unknown_intervals_are_refused_naming_the_units(text: str) -> None:
    with pytest.raises(InvalidAggregation) as caught:
        Interval.parse(text)
    assert caught.value.field == "interval"
    assert str(caught.value) == (
        f"unknown interval {text!r}: a whole number and a unit s, m, h, d or w "
        "(e.g. 10s, 5m, 1h, 1d, 1w)"
    )


@pytest.mark.parametrize("text", ["367d", "53w", "8785h", "31622401s"])
def test_intervals_longer_than_a_year_are_refused(text: str) -> None:
    with pytest.raises(InvalidAggregation, match="longer than a year"):
        Interval.parse(text)
    Interval.parse("366d")


def test_zones_are_iana_names() -> None:
    assert parse_zone("Europe/Berlin").key == "Europe/Berlin"
    assert parse_zone("UTC") is utc_zone()
    for bad in ("Mars/Olympus", "", " UTC", "../etc/passwd", "Europe/", "utc/../UTC"):
        with pytest.raises(InvalidAggregation) as caught:
            parse_zone(bad)
        assert caught.value.field == "tz"
        assert str(caught.value).startswith(f"unknown time zone {bad!r}")


def test_fixed_buckets_are_aligned_to_the_epoch_in_any_zone() -> None:
    start, end = ms(2024, 2, 1, 12, 3, 7), ms(2024, 2, 1, 12, 17)
    for zone in (utc_zone(), BERLIN, ZoneInfo("Asia/Kolkata")):
        grid = Grid(Interval.parse("5m"), zone)
        bounds = grid.boundaries(start, end)
        assert bounds == [ms(2024, 2, 1, 12, minute) for minute in (0, 5, 10, 15, 20)]
        assert grid.count(start, end) == 4


def test_an_exclusive_end_on_a_boundary_adds_no_bucket() -> None:
    grid = Grid(Interval.parse("1h"), utc_zone())
    assert grid.count(ms(2024, 2, 1), ms(2024, 2, 2)) == 24
    assert grid.count(ms(2024, 2, 1), ms(2024, 2, 2) + 1) == 25
    assert grid.boundaries(5, 5) == []
    assert grid.count(6, 5) == 0


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),  # CET -> CEST at 02:00
        (BERLIN, date(2026, 10, 25), 25),  # CEST -> CET at 03:00
        (BERLIN, date(2026, 6, 1), 24),
        (NEW_YORK, date(2026, 3, 8), 23),
        (NEW_YORK, date(2026, 11, 1), 25),
        (ZoneInfo("Australia/Lord_Howe"), date(2026, 4, 5), 24.5),  # a half-hour shift
    ],
)
def test_calendar_days_follow_the_zone_across_dst(zone: ZoneInfo, day: date, hours: float) -> None:
    grid = Grid(Interval.parse("1d"), zone)
    midnight = datetime.combine(day, datetime.min.time(), zone)
    start = to_epoch_ms(midnight) + HOUR  # inside the day
    bounds = grid.boundaries(start, start + 1)
    assert bounds[0] == to_epoch_ms(midnight)
    assert bounds[1] - bounds[0] == hours * HOUR
    assert datetime.fromtimestamp(bounds[1] / 1000, zone).time() == datetime.min.time()


def test_berlin_days_around_both_changes_of_2026() -> None:
    grid = Grid(Interval.parse("1d"), BERLIN)
    bounds = grid.boundaries(ms(2026, 3, 28, tz=BERLIN), ms(2026, 3, 31, tz=BERLIN))
    assert [b - a for a, b in itertools.pairwise(bounds)] == [
        24 * HOUR,
        23 * HOUR,
        24 * HOUR,
    ]
    assert bounds[1] == ms(2026, 3, 28, 23)  # 00:00 CET
    assert bounds[2] == ms(2026, 3, 29, 22)  # 00:00 CEST
    autumn = grid.boundaries(ms(2026, 10, 25, tz=BERLIN), ms(2026, 10, 26, tz=BERLIN))
    assert autumn == [ms(2026, 10, 24, 22), ms(2026, 10, 25, 23)]
    # The repeated hour 02:00-03:00 belongs to the 25th, both times.
    assert grid.index(ms(2026, 10, 25, 0, 30)) == grid.index(ms(2026, 10, 25, 1, 30))


def test_a_midnight_that_does_not_exist_starts_the_day_at_the_change() -> None:
    # Chile moves clocks from 00:00 to 01:00 on the first Sunday of September.
    santiago = ZoneInfo("America/Santiago")
    grid = Grid(Interval.parse("1d"), santiago)
    inside = ms(2026, 9, 6, 12, tz=santiago)
    start, end = grid.boundaries(inside, inside + 1)
    assert end - start == 23 * HOUR
    assert datetime.fromtimestamp(start / 1000, santiago).hour == 1


def test_weeks_start_on_monday_in_the_zone() -> None:
    grid = Grid(Interval.parse("1w"), BERLIN)
    bounds = grid.boundaries(ms(2026, 3, 25, 12), ms(2026, 4, 2))
    local = [datetime.fromtimestamp(b / 1000, BERLIN) for b in bounds]
    assert [(moment.date().isoformat(), moment.hour) for moment in local] == [
        ("2026-03-23", 0),
        ("2026-03-30", 0),
        ("2026-04-06", 0),
    ]
    assert bounds[1] - bounds[0] == 7 * DAY - HOUR  # the week of the spring change
    # In UTC too, weeks start on Monday (the epoch was a Thursday): 1w is not 7d.
    utc_week = Grid(Interval.parse("1w"), utc_zone()).boundaries(ms(1970, 1, 1), ms(1970, 1, 2))
    assert utc_week[0] == ms(1969, 12, 29)
    assert Grid(Interval.parse("7d"), utc_zone()).boundaries(0, 1)[0] == 0


def test_multi_day_buckets_count_local_dates_from_1970() -> None:
    grid = Grid(Interval.parse("2d"), BERLIN)
    start, end = grid.boundaries(ms(1970, 1, 2, 12, tz=BERLIN), ms(1970, 1, 2, 13, tz=BERLIN))
    assert (start, end) == (ms(1970, 1, 1, tz=BERLIN), ms(1970, 1, 3, tz=BERLIN))


@given(
    st.integers(ms(1971, 1, 1), ms(2037, 1, 1)),
    st.integers(1, 40 * DAY),
    st.sampled_from(["1d", "2d", "1w", "1h", "15m", "7s"]),
    st.sampled_from(
        ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]
    ),
)
def test_boundaries_cover_the_range_and_agree_with_index(
    start: int, length: int, text: str, zone: str
) -> None:
    grid = Grid(Interval.parse(text), ZoneInfo(zone))
    end = start + length
    assume(grid.count(start, end) <= MAX_BUCKETS)
    bounds = grid.boundaries(start, end)
    assert len(bounds) == grid.count(start, end) + 1
    assert bounds[0] <= start < bounds[1]
    assert bounds[-2] < end <= bounds[-1]
    assert bounds == sorted(set(bounds))
    for left, right in itertools.pairwise(bounds):
        assert grid.index(left) == grid.index(right - 1) == grid.index(right) - 1
    if text in ("1d", "1w"):
        for bound in bounds:
            local = datetime.fromtimestamp(bound / 1000, ZoneInfo(zone))
            assert (local.hour, local.minute) == (0, 0)
            assert text == "1d" or local.weekday() == 0


def test_boundaries_at_the_ends_of_the_calendar_are_clamped() -> None:
    first = ms(1, 1, 1)
    last = to_epoch_ms(datetime.max.replace(tzinfo=UTC))
    for text in ("1w", "1d", "366d", "1h"):
        for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"):
            grid = Grid(Interval.parse(text), ZoneInfo(zone))
            assert grid.boundaries(first, first + 1)[0] == first
            assert grid.boundaries(last, last + 1)[-1] == last + 1
    assert clamp_ms(last + 1) == last
    assert clamp_ms(first - 5) == first


def test_max_points_picks_the_shortest_nice_interval_that_fits() -> None:
    day = (ms(2024, 2, 1), ms(2024, 2, 2))
    assert str(choose_interval(1000, utc_zone(), *day)) == "2m"  # 720 buckets; 1m: 1440
    assert str(choose_interval(1440, utc_zone(), *day)) == "1m"
    assert str(choose_interval(24, utc_zone(), *day)) == "1h"
    assert str(choose_interval(1, utc_zone(), *day)) == "1d"
    week = (ms(2024, 2, 5), ms(2024, 2, 12))  # Monday to Monday
    assert str(choose_interval(1, utc_zone(), *week)) == "1w"
    assert str(choose_interval(1000, utc_zone(), *week)) == "15m"  # 672; 10m: 1008
    assert str(choose_interval(10, utc_zone(), 0, 0)) == "1s"


@given(st.integers(0, 10**11), st.integers(1, 10**10), st.integers(1, MAX_BUCKETS))
def test_max_points_gives_at_most_that_many_and_the_next_shorter_gives_more(
    start: int, length: int, points: int
) -> None:
    zone = utc_zone()
    try:
        chosen = choose_interval(points, zone, start, start + length)
    except InvalidAggregation:
        assert Grid(Interval.parse("1w"), zone).count(start, start + length) > points
        return
    assert Grid(chosen, zone).count(start, start + length) <= points
    position = LADDER.index(str(chosen))
    if position:
        shorter = Interval.parse(LADDER[position - 1])
        assert Grid(shorter, zone).count(start, start + length) > points


def test_max_points_out_of_bounds_and_too_small() -> None:
    for bad in (0, -1, MAX_BUCKETS + 1):
        with pytest.raises(InvalidAggregation, match=f"max_points must be 1-{MAX_BUCKETS}"):
            choose_interval(bad, utc_zone(), 0, 1000)
    with pytest.raises(InvalidAggregation) as caught:
        choose_interval(2, utc_zone(), ms(2024, 1, 1), ms(2024, 3, 1))
    assert caught.value.field == "max_points"
    assert "1w, the longest interval it chooses from, gives 9 buckets" in str(caught.value)


def test_too_many_buckets_is_refused_with_advice() -> None:
    week = (ms(2024, 2, 5), ms(2024, 2, 12))
    with pytest.raises(InvalidAggregation) as caught:
        check_bucket_count(Grid(Interval.parse("1s"), utc_zone()), *week)
    assert caught.value.field == "interval"
    assert str(caught.value) == (
        "interval too small for the range: 1s gives 604800 buckets, at most 10000; "
        "use 2m or longer, or max_points"
    )
    assert check_bucket_count(Grid(Interval.parse("2m"), utc_zone()), *week) == 5040
    years = (ms(1900, 1, 1), ms(2200, 1, 1))
    with pytest.raises(
        InvalidAggregation, match=r"1w gives 15654 buckets, at most 10000; use a longer one$"
    ):
        check_bucket_count(Grid(Interval.parse("1w"), utc_zone()), *years)

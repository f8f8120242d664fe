from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ev_schemas import format_duration, parse_duration


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        ("60s", timedelta(seconds=60)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1500ms", timedelta(milliseconds=1500)),
        ("1.5s", timedelta(milliseconds=1500)),
        (" 0s ", timedelta(0)),
        (90, timedelta(seconds=90)),
        (0.25, timedelta(milliseconds=250)),
        (timedelta(seconds=3), timedelta(seconds=3)),
    ],
)
def test_durations_parse(given_value: object, expected: timedelta) -> None:
    assert parse_duration(given_value) == expected


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("5", "must be a duration"),
        ("5 minutes", "must be a duration"),
        ("-5s", "must be a duration"),
        (-1, "must not be negative"),
        ("0.5ms", "whole milliseconds"),
        (0.0001, "whole milliseconds"),
        (float("inf"), "not inf"),
        (float("nan"), "not nan"),
        (True, "not a boolean"),
        (None, "must be a duration"),
        ("400d", "at most 366 days"),
    ],
)
def test_bad_durations_say_why(bad: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0s"), (1, "1ms"), (1500, "1500ms"), (60_000, "1m"), (90_000, "90s"), (7_200_000, "2h")],
)
def test_durations_are_written_in_the_largest_exact_unit(ms: int, text: str) -> None:
    assert format_duration(timedelta(milliseconds=ms)) == text


@given(st.integers(0, 366 * 86_400_000))
def test_formatting_round_trips(ms: int) -> None:
    value = timedelta(milliseconds=ms)
    assert parse_duration(format_duration(value)) == value

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from _rfc3339 import exact_epoch_us, rfc3339_texts
from hypothesis import given
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from ev_schemas import (
    format_epoch_ms,
    format_timestamp,
    from_epoch_ms,
    to_epoch_ms,
    to_epoch_ms_ceil,
    to_epoch_us,
)
from ev_schemas.timestamps import MAX_EPOCH_US, MIN_EPOCH_US, normalise


def test_format_uses_z_and_milliseconds_only_when_present() -> None:
    assert format_timestamp(datetime(2024, 2, 1, 12, tzinfo=UTC)) == "2024-02-01T12:00:00Z"
    moment = datetime(2024, 2, 1, 13, 0, 0, 5999, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == "2024-02-01T12:00:00.005Z"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        normalise(datetime(2024, 2, 1))


@given(st.integers(min_value=0, max_value=2**41))
def test_epoch_ms_round_trips(ms: int) -> None:
    assert to_epoch_ms(from_epoch_ms(ms)) == ms
    assert datetime.fromisoformat(format_timestamp(from_epoch_ms(ms))) == from_epoch_ms(ms)


@given(ms=st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_format_epoch_ms_is_format_timestamp_of_from_epoch_ms(ms: int) -> None:
    assert format_epoch_ms(ms) == format_timestamp(from_epoch_ms(ms))


_AWARE = TypeAdapter(AwareDatetime)


@given(rfc3339_texts())
def test_any_rfc3339_instant_counts_from_the_epoch_without_overflow(text: str) -> None:
    moment = _AWARE.validate_python(text)
    exact = exact_epoch_us(text)
    assert to_epoch_us(moment) == exact
    assert to_epoch_ms(moment) == exact // 1000
    assert to_epoch_ms_ceil(moment) == -(-exact // 1000)


@given(rfc3339_texts())
def test_normalise_and_format_any_rfc3339_instant_or_say_it_is_out_of_range(text: str) -> None:
    moment = _AWARE.validate_python(text)
    exact_ms = exact_epoch_us(text) // 1000
    if MIN_EPOCH_US <= exact_epoch_us(text) <= MAX_EPOCH_US:
        utc = normalise(moment)
        assert utc.tzinfo is UTC
        assert to_epoch_ms(utc) == exact_ms
        assert format_timestamp(moment) == format_epoch_ms(exact_ms)
    else:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        with pytest.raises(ValueError, match="out of range"):
            normalise(moment)
        with pytest.raises(ValueError, match="out of range"):
            format_timestamp(moment)


def test_instants_outside_years_1_to_9999_in_utc_are_a_value_error() -> None:
    # Regression: astimezone raised OverflowError, which pydantic does not turn into a
    # validation error.
    for text in ("0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01"):
        with pytest.raises(ValueError, match="out of range"):
            normalise(datetime.fromisoformat(text))

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ev_schemas import format_epoch_ms, format_timestamp, from_epoch_ms, to_epoch_ms
from ev_schemas.timestamps import normalise


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

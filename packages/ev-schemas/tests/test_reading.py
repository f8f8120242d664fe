from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ev_schemas import Reading

_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


@given(
    sensor_id=st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True),
    sensor_type=st.text(max_size=40),
    unit=st.text(max_size=40),
    moment=_TIMES,
    value=st.floats(allow_nan=False, allow_infinity=False),
)
def test_to_json_spells_every_reading_as_pydantic_does(
    sensor_id: str, sensor_type: str, unit: str, moment: datetime, value: float
) -> None:
    reading = Reading(
        sensor_id=sensor_id, sensor_type=sensor_type, timestamp=moment, value=value, unit=unit
    )
    assert reading.to_json() == reading.model_dump_json().encode()


@given(value=st.floats() | st.integers(min_value=-(2**53), max_value=2**53))
def test_to_json_of_unvalidated_values_matches_pydantic(value: float) -> None:
    """model_construct skips validation; the JSON must still be pydantic's."""
    reading = Reading.model_construct(
        sensor_id="ev_001",
        sensor_type="battery",
        timestamp=datetime(2024, 2, 1, 12, tzinfo=timezone(timedelta(hours=-5))),
        value=value,
        unit="percentage",
    )
    assert reading.to_json() == reading.model_dump_json().encode()


@given(moment=_TIMES, value=st.floats(allow_nan=False, allow_infinity=False))
def test_a_trusted_reading_is_what_model_construct_makes(moment: datetime, value: float) -> None:
    fast = Reading.trusted("ev_001", "speed", moment, value, "km/h")
    slow = Reading.model_construct(
        sensor_id="ev_001", sensor_type="speed", timestamp=moment, value=value, unit="km/h"
    )
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump() == slow.model_dump()
    assert fast.to_json() == slow.model_dump_json().encode()
    assert (fast.__pydantic_extra__, fast.__pydantic_private__) == (None, None)

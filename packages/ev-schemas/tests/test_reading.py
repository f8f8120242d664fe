from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ev_schemas import (
    HistoryPage,
    Reading,
    from_epoch_ms,
    history_page_json,
    stored_reading_json,
)

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


@given(
    sensor_id=st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True),
    unit=st.text(max_size=20),
    ms=st.integers(min_value=0, max_value=253_402_300_799_999),
    value=st.floats(allow_nan=False, allow_infinity=False),
)
def test_stored_reading_json_is_the_readings_json(
    sensor_id: str, unit: str, ms: int, value: float
) -> None:
    reading = Reading.trusted(sensor_id, "speed", from_epoch_ms(ms), value, unit)
    assert stored_reading_json(sensor_id, "speed", ms, value, unit) == reading.model_dump_json()


@given(
    items=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2**42), st.floats(-1e6, 1e6)), max_size=5
    ),
    cursor=st.none() | st.text(alphabet="ABCDEFabcdef0123456789=-_", min_size=1, max_size=30),
)
def test_history_page_json_is_the_models_json(
    items: list[tuple[int, float]], cursor: str | None
) -> None:
    readings = [Reading.trusted("ev_001", "battery", from_epoch_ms(ms), v, "%") for ms, v in items]
    page = HistoryPage(sensor_id="ev_001", items=readings, next_cursor=cursor)
    texts = [stored_reading_json("ev_001", "battery", ms, v, "%") for ms, v in items]
    assert history_page_json("ev_001", texts, cursor) == page.model_dump_json().encode()

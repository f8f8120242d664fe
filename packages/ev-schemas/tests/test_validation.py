from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _rfc3339 import exact_epoch_us, rfc3339_texts
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ev_schemas import (
    InvalidReading,
    Reading,
    ReadingValidator,
    default_catalogue,
    to_epoch_ms,
)
from ev_schemas.timestamps import MAX_EPOCH_US, MIN_EPOCH_US

NOW = datetime(2024, 2, 1, 12, 30, tzinfo=UTC)


def body(**overrides: Any) -> bytes:
    reading: dict[str, Any] = {
        "sensor_id": "ev_001",
        "sensor_type": "battery",
        "timestamp": "2024-02-01T12:00:00Z",
        "value": 85.5,
        "unit": "percentage",
    }
    reading.update(overrides)
    return json.dumps({k: v for k, v in reading.items() if v is not ...}).encode()


@pytest.fixture
def validator() -> ReadingValidator:
    return ReadingValidator(clock=lambda: NOW)


def test_seed_reading_is_accepted_unchanged(validator: ReadingValidator) -> None:
    reading = validator.parse(body(), expected_type="battery")
    assert reading == Reading(
        sensor_id="ev_001",
        sensor_type="battery",
        timestamp=datetime(2024, 2, 1, 12, tzinfo=UTC),
        value=85.5,
        unit="percentage",
    )
    assert reading.to_json() == (
        b'{"sensor_id":"ev_001","sensor_type":"battery","timestamp":"2024-02-01T12:00:00Z",'
        b'"value":85.5,"unit":"percentage"}'
    )


@pytest.mark.parametrize(
    ("sensor_type", "value", "unit", "expected"),
    [
        ("temperature", 77, "fahrenheit", 25.0),
        ("temperature", 300.15, "kelvin", 27.0),
        ("speed", 60, "mph", 96.56064),
        ("speed", 10, "m/s", 36.0),
        ("battery", 0.5, "fraction", 50.0),
        ("odometer", 1500, "meter", 1.5),
        ("tire_pressure", 2.4, "bar", 240.0),
        ("power", 1500, "watt", 1.5),
    ],
)
def test_alternative_units_are_converted_to_the_canonical_unit(
    validator: ReadingValidator, sensor_type: str, value: float, unit: str, expected: float
) -> None:
    reading = validator.parse(body(sensor_type=sensor_type, value=value, unit=unit))
    assert reading.value == expected
    assert reading.unit == default_catalogue()[sensor_type].unit


def test_timestamp_is_normalised_to_utc_milliseconds(validator: ReadingValidator) -> None:
    reading = validator.parse(body(timestamp="2024-02-01T13:00:00.123456+01:00"))
    assert reading.timestamp == datetime(2024, 2, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert b'"timestamp":"2024-02-01T12:00:00.123Z"' in reading.to_json()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "Invalid JSON"),
        (b"[1, 2]", "body: Input should be an object"),
        (body(value=...), "value: Field required"),
        (body(value="85.5"), "value: Input should be a valid number"),
        (body(value=True), "value: Input should be a valid number"),
        (
            b'{"sensor_id":"a","sensor_type":"battery","timestamp":"2024-02-01T12:00:00Z",'
            b'"value":NaN,"unit":"percentage"}',
            "value: Input should be a finite number",
        ),
        (body(timestamp="2024-02-01T12:00:00"), "timestamp: Input should have timezone info"),
        (body(timestamp=1706788800), "timestamp: Input should be a valid datetime"),
        (body(timestamp="2024-02-01T12:40:00Z"), "is more than 300 s in the future"),
        (body(sensor_id="ev 001"), "sensor_id 'ev 001' is not 1-64 characters"),
        (body(sensor_id="x" * 65), "is not 1-64 characters"),
        (body(sensor_id=""), "is not 1-64 characters"),
        (body(sensor_type="warp_drive"), "sensor_type 'warp_drive' is not configured"),
        (body(unit="volt"), "unit 'volt' is not known for battery; accepted: percentage"),
        (
            body(value=100.5),
            "value 100.5 percentage is outside the plausible range of battery: 0 to 100",
        ),
        (body(sensor_type="speed", value=-1, unit="km/h"), "outside the plausible range of speed"),
        (
            body(sensor_type="temperature", value=500, unit="fahrenheit"),
            "value 260 celsius (500 fahrenheit) is outside",
        ),
    ],
)
def test_invalid_readings_say_what_is_wrong(
    validator: ReadingValidator, raw: bytes, reason: str
) -> None:
    with pytest.raises(InvalidReading) as caught:
        validator.parse(raw)
    assert reason in caught.value.reason


def test_type_must_match_the_routing_key(validator: ReadingValidator) -> None:
    with pytest.raises(InvalidReading, match="does not match the routing key's type 'speed'"):
        validator.parse(body(), expected_type="speed")


def test_every_failing_field_is_named(validator: ReadingValidator) -> None:
    with pytest.raises(InvalidReading) as caught:
        validator.parse(b"{}")
    for field in ("sensor_id", "sensor_type", "timestamp", "value", "unit"):
        assert f"{field}: Field required" in caught.value.reason


def test_reasons_never_echo_long_hostile_input(validator: ReadingValidator) -> None:
    with pytest.raises(InvalidReading) as caught:
        validator.parse(body(sensor_type="x" * 10_000))
    assert len(caught.value.reason) < 400


def test_unknown_fields_are_ignored(validator: ReadingValidator) -> None:
    assert validator.parse(body(vehicle="tesla")).value == 85.5


def test_future_skew_is_configurable() -> None:
    strict = ReadingValidator(clock=lambda: NOW, max_future_skew=timedelta(0))
    with pytest.raises(InvalidReading, match="0 s in the future"):
        strict.parse(body(timestamp="2024-02-01T12:30:00.001Z"))
    assert strict.parse(body(timestamp="2024-02-01T12:30:00Z")).timestamp == NOW


def test_a_restricted_catalogue_rejects_the_other_types() -> None:
    validator = ReadingValidator(
        catalogue=default_catalogue().restrict(["speed"]), clock=lambda: NOW
    )
    with pytest.raises(InvalidReading, match="configured: speed"):
        validator.parse(body())


@given(
    sensor_id=st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True),
    type_name=st.sampled_from(list(default_catalogue())),
    offset_ms=st.integers(min_value=-(10**12), max_value=0),
    fraction=st.floats(min_value=0, max_value=1),
)
def test_any_in_range_reading_round_trips(
    sensor_id: str, type_name: str, offset_ms: int, fraction: float
) -> None:
    sensor_type = default_catalogue()[type_name]
    value = sensor_type.minimum + fraction * (sensor_type.maximum - sensor_type.minimum)
    value = min(max(value, sensor_type.minimum), sensor_type.maximum)
    moment = NOW + timedelta(milliseconds=offset_ms)
    raw = json.dumps(
        {
            "sensor_id": sensor_id,
            "sensor_type": type_name,
            "timestamp": moment.isoformat(),
            "value": value,
            "unit": sensor_type.unit,
        }
    )
    reading = ReadingValidator(clock=lambda: NOW).parse(raw, expected_type=type_name)
    assert (reading.sensor_id, reading.value, reading.unit) == (sensor_id, value, sensor_type.unit)
    assert reading.timestamp == moment
    assert Reading.model_validate_json(reading.to_json()) == reading


@given(
    st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["sensor_id", "sensor_type", "timestamp", "value", "unit", "x"]),
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_arbitrary_bodies_are_accepted_or_refused_with_a_reason(raw: bytes) -> None:
    try:
        reading = ReadingValidator(clock=lambda: NOW).parse(raw)
    except InvalidReading as exc:
        reason = exc.reason
        assert reason
    else:
        sensor_type = default_catalogue()[reading.sensor_type]
        assert math.isfinite(reading.value)
        assert sensor_type.minimum <= reading.value <= sensor_type.maximum
        assert reading.unit == sensor_type.unit


@given(rfc3339_texts())
def test_any_rfc3339_timestamp_is_accepted_or_refused_with_a_reason(text: str) -> None:
    """Years 0001-9999, any offset, any fraction: a reading or InvalidReading, nothing else (a
    time in year 0 or 10000 in UTC was an OverflowError)."""
    exact_ms = exact_epoch_us(text) // 1000
    validator = ReadingValidator(clock=lambda: NOW)
    if 0 <= exact_ms <= to_epoch_ms(NOW) + 5 * 60_000:
        assert to_epoch_ms(validator.parse(body(timestamp=text)).timestamp) == exact_ms
    else:
        with pytest.raises(InvalidReading, match="timestamp"):
            validator.parse(body(timestamp=text))


@given(rfc3339_texts())
def test_reading_model_takes_any_rfc3339_timestamp_or_fails_validation(text: str) -> None:
    fields = json.loads(body(timestamp=text))
    exact_us = exact_epoch_us(text)
    if MIN_EPOCH_US <= exact_us <= MAX_EPOCH_US:
        assert to_epoch_ms(Reading.model_validate(fields).timestamp) == exact_us // 1000
    else:
        with pytest.raises(ValidationError, match=r"timestamp\n.*out of range"):
            Reading.model_validate(fields)


def test_a_timestamp_in_year_0_in_utc_is_invalid_not_an_overflow(
    validator: ReadingValidator,
) -> None:
    with pytest.raises(InvalidReading, match="timestamp: date-time out of range"):
        validator.parse(body(timestamp="0001-01-01T00:00:00+01:00"))

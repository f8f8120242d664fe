"""Helpers of the API's tests (a module of its own: conftest.py is not importable by name)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import strategies as st

from ev_schemas import Reading, default_catalogue

T0 = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
UNITS = {sensor_type.name: sensor_type.unit for sensor_type in default_catalogue().values()}


def reading(
    sensor_type: str = "battery",
    seconds: float = 0,
    value: float = 50.0,
    sensor_id: str = "ev_001",
) -> Reading:
    """A canonical reading ``seconds`` after :data:`T0`."""
    return Reading(
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        timestamp=T0 + timedelta(seconds=seconds),
        value=value,
        unit=UNITS[sensor_type],
    )


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> str:
    """RFC 3339 date-times over the grammar's range: years 0001-9999 (the first and last days
    often), any offset from -23:59 to +23:59 or Z, fractional seconds of any length."""
    day = draw(st.dates() | st.sampled_from([date.min, date.max]))
    clock = draw(
        st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
        | st.sampled_from([(0, 0, 0), (23, 59, 59)])
    )
    fraction = draw(st.none() | st.text("0123456789", min_size=1, max_size=40))
    minutes = draw(st.none() | st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    zone = "Z"
    if minutes is not None:
        hours, rest = divmod(abs(minutes), 60)
        zone = f"{'-' if minutes < 0 else '+'}{hours:02d}:{rest:02d}"
    text = f"{day.isoformat()}T{clock[0]:02d}:{clock[1]:02d}:{clock[2]:02d}"
    return text + ("" if fraction is None else "." + fraction) + zone

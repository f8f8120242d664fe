"""Helpers of the API's tests (a module of its own: conftest.py is not importable by name)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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

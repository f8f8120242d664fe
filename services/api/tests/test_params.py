"""Parameter parsing: RFC 3339 times and sensor-type filters."""

from __future__ import annotations

import pytest

from ev_api.params import parse_type_filter, rfc3339
from ev_schemas import default_catalogue

CATALOGUE = default_catalogue().restrict(["battery", "speed", "voltage"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2024-02-01T12:00:00Z", "2024-02-01T12:00:00Z"),
        ("2024-02-01t12:00:00z", "2024-02-01t12:00:00z"),
        ("2024-02-01T12:00:00.123456+01:00", "2024-02-01T12:00:00.123456+01:00"),
        ("2024-02-01 12:00:00-05:30", "2024-02-01 12:00:00-05:30"),
        # An unencoded '+' arrives as a space.
        ("2024-02-01T12:00:00 01:00", "2024-02-01T12:00:00+01:00"),
        ("2024-02-01T12:00:00.5 01:00", "2024-02-01T12:00:00.5+01:00"),
        # RFC 3339 sets no limit to the fraction's digits (beyond microseconds they are cut).
        ("2024-02-01T12:00:00.1234567890123Z", "2024-02-01T12:00:00.1234567890123Z"),
        ("2024-02-01T12:00:00.1234567890123 01:00", "2024-02-01T12:00:00.1234567890123+01:00"),
    ],
)
def test_rfc3339_accepted(given: str, expected: str) -> None:
    assert rfc3339(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "2024-02-01T12:00:00",  # naive
        "2024-02-01",
        "1706788800",
        "2024-02-01T12:00Z",
        "yesterday",
        "2024-02-01T12:00:00+0100",
        "",
    ],
)
def test_rfc3339_refused(given: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339 date-time with a time zone"):
        rfc3339(given)


def test_type_filter() -> None:
    assert parse_type_filter(None, CATALOGUE) is None
    assert parse_type_filter(["speed"], CATALOGUE) == ("speed",)
    assert parse_type_filter(["speed, battery", "voltage", "speed"], CATALOGUE) == (
        "speed",
        "battery",
        "voltage",
    )


def test_type_filter_names_the_configured_types() -> None:
    with pytest.raises(ValueError, match=r"'warp', 'x'; configured: battery, speed, voltage"):
        parse_type_filter(["battery,warp", "x"], CATALOGUE)
    with pytest.raises(ValueError, match="name at least one sensor type"):
        parse_type_filter([" , "], CATALOGUE)

"""Choosing JSON or another media type from Accept: JSON unless the other is rated higher."""

from __future__ import annotations

import pytest

from ev_api.negotiation import prefers, quality

CSV = "text/csv"


@pytest.mark.parametrize(
    "accept",
    [
        "text/csv",
        "text/csv, application/json;q=0.5",
        "application/json;q=0.1, text/*",
        "TEXT/CSV",
        "text/csv;charset=utf-8",
        "text/csv;q=0.2, */*;q=0.1",
    ],
)
def test_csv_when_rated_above_json(accept: str) -> None:
    assert prefers(accept, CSV)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "application/json",
        "application/json, text/csv",  # a tie: JSON, the default
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # a browser
        "text/html",  # neither: JSON as before, no 406
        "text/csv;q=0",
        "text/csv;q=banana",
        "text/csv;q=2",
        "garbage",
        "text/*, application/*",
    ],
)
def test_json_otherwise(accept: str | None) -> None:
    assert not prefers(accept, CSV)


def test_the_most_specific_range_sets_the_quality() -> None:
    assert quality("text/*;q=0.3, text/csv;q=0.7, */*;q=0.1", CSV) == 0.7
    assert quality("text/*;q=0.3, */*;q=0.1", CSV) == 0.3
    assert quality("*/*;q=0.1", CSV) == 0.1
    assert quality("application/json", CSV) == 0.0

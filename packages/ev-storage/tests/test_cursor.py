"""History and catalogue cursors: opaque, round-tripping, and strict about what they accept."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ev_storage import (
    CURSOR_PATTERN,
    InvalidCursor,
    Position,
    decode_catalogue_cursor,
    decode_cursor,
    encode_catalogue_cursor,
    encode_cursor,
)


def test_cursor_is_urlsafe_base64_of_ms_and_type() -> None:
    cursor = encode_cursor(Position(1706788800000, "battery"))
    assert cursor == "MTcwNjc4ODgwMDAwMDpiYXR0ZXJ5"
    assert decode_cursor(cursor) == Position(1706788800000, "battery")


@given(
    ms=st.integers(min_value=0, max_value=253402300799999),
    sensor_type=st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True),
)
def test_round_trip(ms: int, sensor_type: str) -> None:
    cursor = encode_cursor(Position(ms, sensor_type))
    assert "=" not in cursor
    assert cursor.isascii()
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == Position(ms, sensor_type)


def test_positions_order_by_time_then_type() -> None:
    assert Position(1, "speed") < Position(2, "battery")
    assert Position(1, "battery") < Position(1, "speed")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "not base64 at all",
        "A",
        _b64("1706788800000"),
        _b64("-1:battery"),
        _b64("+1:battery"),
        _b64("1_0:battery"),
        _b64("12:Battery"),
        _b64("12:"),
        _b64(":battery"),
        base64.urlsafe_b64encode(b"\xff\xfe:battery").decode(),
        "A" * 500,
    ],
)
def test_malformed_cursors_raise_a_readable_error(cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="malformed cursor") as caught:
        decode_cursor(cursor)
    assert isinstance(caught.value, ValueError)


@given(
    st.text(max_size=300)
    | st.binary(max_size=250).map(lambda raw: base64.urlsafe_b64encode(raw).decode())
    | st.builds(lambda ms, kind: _b64(f"{ms}:{kind}"), st.integers(0), st.sampled_from(["a", "B"]))
)
def test_only_text_of_the_published_pattern_decodes(cursor: str) -> None:
    """CURSOR_PATTERN is what an API's schema can promise: what it refuses, decoding refuses."""
    if re.fullmatch(CURSOR_PATTERN, cursor) is None:
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor)


@pytest.mark.parametrize(
    ("order", "member"),
    [("id", "ev_001"), ("id", "A"), ("last_seen", "063873302400000:ev-9.z")],
)
def test_catalogue_cursors_round_trip_and_match_the_pattern(order: str, member: str) -> None:
    cursor = encode_catalogue_cursor(order, member)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_catalogue_cursor(cursor, order) == member


@pytest.mark.parametrize(
    ("raw", "order", "message"),
    [
        (b"i:ev 001", "id", "not a next_cursor"),
        (b"s:12:ev_001", "last_seen", "not a next_cursor"),
        (b"x:ev_001", "id", "not a next_cursor"),
        (b"ev_001", "id", "not a next_cursor"),
        (b"s:063873302400000:ev_001", "id", "sorted by last_seen, not by id"),
    ],
)
def test_catalogue_cursors_refuse_what_they_did_not_write(
    raw: bytes, order: str, message: str
) -> None:
    cursor = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor, match=message):
        decode_catalogue_cursor(cursor, order)
    with pytest.raises(InvalidCursor, match="malformed cursor"):
        decode_catalogue_cursor("a b", order)

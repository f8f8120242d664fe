"""History paging cursors: the position of the last item returned, opaque to API clients.

Items are ordered by (timestamp ms, sensor type), a total order because a history holds at most one
reading per millisecond and type. A cursor names the last item of a page, so the next page starts
strictly after it: no gap and no repeat, even when readings arrive between two requests.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ev_schemas import SENSOR_ID_RE, shown
from ev_schemas.catalogue import SENSOR_TYPE_PATTERN
from ev_storage.errors import InvalidCursor

MAX_CURSOR_CHARS = 200
#: Every cursor :func:`encode_cursor` writes matches this (unpadded URL-safe base64); an API may
#: publish it in its schema, as :func:`decode_cursor` refuses anything else.
CURSOR_PATTERN = f"^[A-Za-z0-9_-]{{1,{MAX_CURSOR_CHARS}}}$"
_CURSOR_RE = re.compile(CURSOR_PATTERN)


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A point in the (timestamp ms, sensor type) order of history items."""

    ms: int
    sensor_type: str


def encode_cursor(position: Position) -> str:
    """URL-safe base64 of ``"<ms>:<type>"``, without padding."""
    return _pack(f"{position.ms}:{position.sensor_type}")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor from :func:`encode_cursor` names; :class:`InvalidCursor` otherwise."""
    ms_text, sensor_type = _unpack(cursor)
    # int() alone would also accept "+1", " 1" or "1_0"; a cursor we wrote has plain digits.
    if (
        not ms_text.isascii()
        or not ms_text.isdigit()
        or not SENSOR_TYPE_PATTERN.fullmatch(sensor_type)
    ):
        raise InvalidCursor(
            f"malformed cursor {shown(cursor)}: not a next_cursor returned by this API"
        )
    return Position(int(ms_text), sensor_type)


#: The orders of the fleet catalogue, and the tag of each in its cursors.
CATALOGUE_ORDERS = {"id": "i", "last_seen": "s"}
_SEEN_MEMBER_RE = re.compile(r"[0-9]{15}:(.+)")


def encode_catalogue_cursor(order: str, member: str) -> str:
    """A catalogue page's cursor: the order's tag and the last item's index member (its id, or
    ``<15 digits>:<id>`` in the last-seen order), URL-safe base64 without padding."""
    return _pack(f"{CATALOGUE_ORDERS[order]}:{member}")


def decode_catalogue_cursor(cursor: str, order: str) -> str:
    """The index member a cursor of :func:`encode_catalogue_cursor` names, for a page in
    ``order``; :class:`InvalidCursor` for anything else, or a cursor of another order."""
    tag, member = _unpack(cursor)
    orders = {value: key for key, value in CATALOGUE_ORDERS.items()}
    if tag not in orders:
        raise InvalidCursor(
            f"malformed cursor {shown(cursor)}: not a next_cursor returned by this API"
        )
    if orders[tag] != order:
        raise InvalidCursor(
            f"cursor {shown(cursor)} continues a page sorted by {orders[tag]}, not by {order}"
        )
    seen = _SEEN_MEMBER_RE.fullmatch(member)
    sensor_id = member if tag == "i" else (seen.group(1) if seen else "")
    if not SENSOR_ID_RE.fullmatch(sensor_id):
        raise InvalidCursor(
            f"malformed cursor {shown(cursor)}: not a next_cursor returned by this API"
        )
    return member


def _pack(text: str) -> str:
    """``text`` (ASCII) as an unpadded URL-safe base64 cursor."""
    return base64.urlsafe_b64encode(text.encode("ascii")).rstrip(b"=").decode("ascii")


def _unpack(cursor: str) -> tuple[str, str]:
    """The two ``:``-separated parts a :func:`_pack` cursor holds; :class:`InvalidCursor` for
    anything that is not one."""
    if not isinstance(cursor, str) or not _CURSOR_RE.fullmatch(cursor):
        raise InvalidCursor(f"malformed cursor {shown(cursor)}: pass back a next_cursor unchanged")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        head, tail = raw.decode("ascii").split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(
            f"malformed cursor {shown(cursor)}: not a next_cursor returned by this API"
        ) from None
    return head, tail


def encode_alarm_cursor(began_ms: int, alarm_id: str) -> str:
    """A fleet alarm page's cursor: the last item's began ms and alarm id (unpadded base64)."""
    return _pack(f"{began_ms}:{alarm_id}")


def decode_alarm_cursor(cursor: str) -> tuple[int, str]:
    """(began ms, alarm id) of a cursor of :func:`encode_alarm_cursor`; :class:`InvalidCursor`
    for anything else."""
    head, alarm_id = _unpack(cursor)
    if not re.fullmatch(r"-?[0-9]{1,16}", head) or alarm_id.count("~") != 3:
        raise InvalidCursor(
            f"malformed cursor {shown(cursor)}: not a next_cursor returned by this API"
        )
    return int(head), alarm_id

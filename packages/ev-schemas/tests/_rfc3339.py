"""Hypothesis strategies of RFC 3339 text, and the instant a text names computed in whole
numbers (the reference the timestamp functions are checked against).

(Not named conftest: test modules import it, and the repository root has a conftest too.)
"""

from __future__ import annotations

from datetime import date, datetime

from hypothesis import strategies as st

#: Any offset RFC 3339 allows.
OFFSET_MINUTES = st.integers(-(23 * 60 + 59), 23 * 60 + 59)


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> str:
    """RFC 3339 date-times over the whole grammar's range: years 0001-9999, any offset from
    -23:59 to +23:59 or Z, fractional seconds of any length (leap seconds aside)."""
    # The first and last days and seconds often: there an offset moves the instant out of
    # years 1-9999 in UTC, and datetime arithmetic overflows.
    day = draw(st.dates() | st.sampled_from([date.min, date.max]))
    clock = draw(
        st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
        | st.sampled_from([(0, 0, 0), (23, 59, 59)])
    )
    fraction = draw(st.none() | st.text("0123456789", min_size=1, max_size=40))
    minutes = draw(st.none() | OFFSET_MINUTES)
    zone = "Z"
    if minutes is not None:
        hours, rest = divmod(abs(minutes), 60)
        zone = f"{'-' if minutes < 0 else '+'}{hours:02d}:{rest:02d}"
    text = f"{day.isoformat()}T{clock[0]:02d}:{clock[1]:02d}:{clock[2]:02d}"
    return text + ("" if fraction is None else "." + fraction) + zone


def exact_epoch_us(text: str) -> int:
    """The instant of an RFC 3339 text in microseconds since the epoch (truncated, as pydantic
    truncates), computed without datetime arithmetic: the reference for the functions under test."""
    date, _, rest = text.partition("T")
    year, month, day = (int(part) for part in date.split("-"))
    seconds_text, zone = rest[:8], rest[8:]
    fraction = ""
    if zone.startswith("."):
        digits = zone[1:]
        zone = digits.lstrip("0123456789")
        fraction = digits[: len(digits) - len(zone)]
    hour, minute, second = (int(part) for part in seconds_text.split(":"))
    offset = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 60 + int(zone[4:6])) * 60
    days = datetime(year, month, day).toordinal() - datetime(1970, 1, 1).toordinal()
    whole = days * 86_400 + hour * 3600 + minute * 60 + second - offset
    return whole * 1_000_000 + int((fraction + "000000")[:6])

"""Choosing a representation from the ``Accept`` header (RFC 9110, section 12.5.1).

JSON stays the default: no header, ``*/*``, ``application/*``, a tie, or a header naming neither
JSON nor the alternative all give JSON (the routes never answered 406, and clients that send
``Accept: text/html`` or a browser's default keep working). An alternative is chosen only when
the client rates it strictly higher than JSON.
"""

from __future__ import annotations

JSON_MEDIA_TYPE = "application/json"


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) of each media range; a malformed q counts as 0 (RFC 9110 allows
    0.000 to 1.000; a client that sends garbage there did not ask for the range)."""
    found: list[tuple[str, str, float]] = []
    for item in accept.split(","):
        media, *params = item.split(";")
        kind, _, subtype = media.strip().lower().partition("/")
        if not kind or not subtype:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        found.append((kind, subtype, q))
    return found


def quality(accept: str, media_type: str) -> float:
    """How much ``accept`` wants ``media_type``: the q of the most specific range matching it
    (``text/csv`` before ``text/*`` before ``*/*``); 0 when none does."""
    kind, _, subtype = media_type.lower().partition("/")
    best_specificity, best_q = -1, 0.0
    for range_kind, range_subtype, q in _ranges(accept):
        if range_kind == kind and range_subtype == subtype:
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif range_kind == "*" and range_subtype == "*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, best_q = specificity, q
    return best_q


def prefers(accept: str | None, media_type: str) -> bool:
    """Whether ``accept`` rates ``media_type`` strictly above JSON (JSON wins ties)."""
    if not accept:
        return False
    wanted = quality(accept, media_type)
    return wanted > 0 and wanted > quality(accept, JSON_MEDIA_TYPE)

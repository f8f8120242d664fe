"""One history page as CSV: ``GET .../history`` with ``Accept: text/csv``.

The same items as the JSON page (``limit`` and ``cursor`` mean the same), in the export's columns
and with its completeness marker; the next page's URL goes in a ``Link`` header (RFC 8288,
``rel="next"``), as the JSON page's ``next_cursor`` would. Both representations say
``Vary: Accept``, so that caches keep them apart.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ev_api.csv_export import EXAMPLE, HEADER, CsvRows, attachment, complete_marker
from ev_schemas import Catalogue
from ev_storage import Row

VARY_ACCEPT = {"Vary": "Accept"}

HISTORY_CSV_PAGE: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The page: JSON by default; CSV (the `/history.csv` columns and "
        "completeness marker) when `Accept` rates `text/csv` above JSON, with the next page "
        'in a `Link: <url>; rel="next"` header.',
        "content": {"text/csv": {"schema": {"type": "string"}, "example": EXAMPLE}},
    }
}


def next_link(request: Request, cursor: str) -> str:
    """``Link`` to the page after this one: the same URL with ``cursor`` replaced (relative,
    resolved against the request's URL, so it survives proxies that rewrite the host)."""
    url = request.url.include_query_params(cursor=cursor)
    return f'<{url.path}?{url.query}>; rel="next"'


def csv_page(
    request: Request,
    sensor_id: str,
    catalogue: Catalogue,
    rows: list[Row],
    next_cursor: str | None,
) -> Response:
    """The page's rows as a CSV answer (a page is at most HISTORY_MAX_LIMIT rows: built whole)."""
    lines = CsvRows(sensor_id, {name: catalogue[name].unit for name in catalogue}).lines(rows)
    headers = {**VARY_ACCEPT, **attachment(f"{sensor_id}_history.csv")}
    if next_cursor is not None:
        headers["Link"] = next_link(request, next_cursor)
    body = HEADER + lines + complete_marker(len(rows))
    return Response(body, media_type="text/csv", headers=headers)

"""Where a client presents its API key: header ``X-API-Key``, or ``?api_key=`` on a WebSocket.

In one place for the two that must read the same key: authentication (:mod:`ev_api.auth`) and the
rate limit's count per key (:mod:`ev_api.deps`). Nothing here checks a key.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

API_KEY_HEADER = "X-API-Key"
API_KEY_QUERY = "api_key"


def presented_key(connection: HTTPConnection) -> str | None:
    """The key a request or WebSocket carries, unchecked: the header, else the query parameter
    (browsers cannot set headers on a WebSocket); None without either."""
    given = connection.headers.get(API_KEY_HEADER)
    if given is None:
        given = connection.query_params.get(API_KEY_QUERY)
    return given

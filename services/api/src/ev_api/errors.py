"""Exception handlers: every error answer is JSON with ``detail``, and bad input is never a 500.

What uvicorn refuses before the app sees a request (a malformed request line or header, a raw
non-ASCII path, a broken WebSocket handshake) is uvicorn's own plain-text 400: docs/security.md.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, WebSocket, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from ev_schemas import ErrorResponse, shown
from ev_storage import InvalidArgument, StorageError, StorageUnavailable, TlsVerificationFailed

log = logging.getLogger(__name__)

STORAGE_UNAVAILABLE = "storage unavailable"
INTERNAL_ERROR = "internal error"
NOT_FOUND = "Not Found"  # Starlette's words for an HTTP path that matches no route
# The ASGI extension that lets an app answer a WebSocket handshake with an HTTP response.
_DENIAL_RESPONSE = "websocket.http.response"


class AnswerAborted(Exception):
    """Raised once an answer has started, to make the server drop the connection: the only way
    left to tell the client that the body is incomplete. Whoever raises it has logged why."""


def _route(request: Request) -> str:
    """The request's path for a log line: a truncated repr, so a crafted path (a ``%0A`` decodes
    to a newline) can neither forge nor bloat a log line."""
    return shown(request.url.path)


def _error(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


async def storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503: Redis is down or busy; the reason goes to the log, not to the client."""
    log.warning("%s %s: %s", request.method, _route(request), exc)
    return _error(status.HTTP_503_SERVICE_UNAVAILABLE, STORAGE_UNAVAILABLE)


async def certificate_rejected(request: Request, exc: Exception) -> JSONResponse:
    """503: Redis's TLS certificate stopped verifying (it expired while the API ran, say).
    An operator must act, so it is an error in the log; the client sees Redis unavailable."""
    log.error("%s %s: %s", request.method, _route(request), exc)
    return _error(status.HTTP_503_SERVICE_UNAVAILABLE, STORAGE_UNAVAILABLE)


async def invalid_argument(request: Request, exc: Exception) -> JSONResponse:
    """422: a value the storage layer refused (a malformed cursor, an unknown type)."""
    return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 for anything unexpected, with the traceback in the log and nothing in the answer."""
    if not isinstance(exc, AnswerAborted):
        log.error("%s %s failed", request.method, _route(request), exc_info=exc)
    return _error(status.HTTP_500_INTERNAL_SERVER_ERROR, INTERNAL_ERROR)


class InternalErrors:
    """Pure ASGI middleware: an HTTP request that raises unexpectedly is a JSON 500, logged once
    with its traceback, and the exception stops here.

    Starlette's own last-resort handler answers the same 500 but re-raises for the server to log,
    so each bug was logged twice, the second time by uvicorn without the request. Once the answer
    has started, nothing can be answered: the exception goes on and the server drops the
    connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:
            if started:
                raise
            request = Request(scope)
            log.error("%s %s failed", request.method, _route(request), exc_info=exc)
            await _error(status.HTTP_500_INTERNAL_SERVER_ERROR, INTERNAL_ERROR)(
                scope, receive, send
            )


def websocket_not_found(fallback: ASGIApp) -> ASGIApp:
    """The router's answer to a request no route takes: ``fallback`` for HTTP, and for a
    WebSocket handshake (to an unknown path, or to an HTTP route) a JSON 404 where the server
    supports denial responses (uvicorn does) rather than a bare 403 with an empty text body."""

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await fallback(scope, receive, send)
        elif _DENIAL_RESPONSE in scope.get("extensions", {}):
            response = _error(status.HTTP_404_NOT_FOUND, NOT_FOUND)
            await WebSocket(scope, receive, send).send_denial_response(response)
        else:
            await WebSocketClose()(scope, receive, send)

    return not_found


def install_error_handlers(app: FastAPI) -> None:
    # Most specific first is irrelevant to Starlette (it walks the MRO), but reads better.
    app.add_exception_handler(StorageUnavailable, storage_unavailable)
    app.add_exception_handler(TlsVerificationFailed, certificate_rejected)
    app.add_exception_handler(InvalidArgument, invalid_argument)
    app.add_exception_handler(StorageError, internal_error)
    # What escapes every handler (outside a request's middleware too, e.g. in MetricsMiddleware).
    app.add_exception_handler(Exception, internal_error)
    app.router.default = websocket_not_found(app.router.default)


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` entries documenting error answers with :class:`ErrorResponse`."""
    descriptions = {
        status.HTTP_401_UNAUTHORIZED: "Missing or invalid X-API-Key (only when API_KEYS is set).",
        status.HTTP_404_NOT_FOUND: "No data for the sensor (or for the sensor type).",
        status.HTTP_422_UNPROCESSABLE_CONTENT: "Invalid path or query parameter.",
        status.HTTP_503_SERVICE_UNAVAILABLE: "Redis is unavailable.",
    }
    model: type[BaseModel] = ErrorResponse
    return {code: {"model": model, "description": descriptions[code]} for code in codes}

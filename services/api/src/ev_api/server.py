"""The uvicorn options of ``python -m ev_api``, with the bounds an ASGI app cannot set itself.

uvicorn's protocols read from sockets before the app sees anything, so what an unauthenticated
client can make the process hold is decided here:

- a request head (request line and headers) is read up to ``API_MAX_HEADER_BYTES``; a longer one
  is answered 431 and the connection closed (httptools, uvicorn's fast parser, buffers any size);
- a WebSocket message up to ``WS_MAX_MESSAGE_BYTES`` (uvicorn's ``ws_max_size``): websockets
  refuses a larger frame from its header, with close 1009, before reading its payload;
- a WebSocket send waits at most ``WS_SEND_TIMEOUT_S`` for a client that does not read; the client
  is then sent close 1013 and, if it still does not read, its connection is reset as long again
  later (a closed transport otherwise waits for its buffer to drain, forever);
- ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed from ``TRUSTED_PROXIES`` only.

The protocols subclass uvicorn's httptools and websockets (sans-I/O) implementations, the ones
``uvicorn[standard]`` picks by default; only their documented hooks (asyncio's protocol methods,
httptools' parser callbacks) and the connection state those classes keep are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ev_api.settings import Settings

#: Close code and reason for a client dropped because it did not read for WS_SEND_TIMEOUT_S.
SLOW_CLIENT_CLOSE = (1013, "client too slow: not reading")
HEADER_TOO_LARGE = "request header fields too large"
#: A WebSocket's kernel send buffer (the kernel doubles it): plenty for live readings.
WS_SEND_BUFFER_BYTES = 64 * 1024


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools with a limit on each request's head: 431 beyond ``max_head_bytes``."""

    max_head_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between two requests, or within a head
        self._head_bytes = 0
        self._heads_done = 0

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = self.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Too much unless the head ends within the room left: feed that much and see.
        heads_done = self._heads_done
        self._head_bytes = self.max_head_bytes
        super().data_received(data[:room])
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # refused (400), or upgraded to a WebSocket: the rest is not ours to parse
        if self._heads_done == heads_done:
            self._refuse_head()
        else:
            self.data_received(data[room:])  # the body, or the next request's head

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads_done += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        body = json.dumps({"detail": HEADER_TOO_LARGE}).encode()
        head = (
            "HTTP/1.1 431 Request Header Fields Too Large\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.logger.debug("request head over %d bytes: 431", self.max_head_bytes)
        self.transport.write(head.encode() + body)
        self.transport.close()


class SendDeadlineProtocol(WebSocketsSansIOProtocol):
    """websockets (sans-I/O) with a send deadline; a connection the server closes (deadline,
    keepalive timeout, the app's close) is reset when its client has not taken the close frame
    ``send_timeout`` later, instead of waiting for it forever."""

    send_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._app_closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # The kernel would grow a silent reader's send buffer to tcp_wmem's maximum (4 MiB
            # here): hours of live messages before the deadline could even start to run.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WS_SEND_BUFFER_BYTES)
        super().connection_made(transport)

    async def send(self, message: Any) -> None:
        if self.close_sent and not self._app_closed:
            # The server closed (send deadline, keepalive, a frame over WS_MAX_MESSAGE_BYTES):
            # uvicorn would raise RuntimeError, but for the app the client is gone, as after
            # any disconnect.
            raise ClientDisconnected()
        if message["type"] == "websocket.close":
            self._app_closed = True
        if not self.writable.is_set() and not self.disconnected:
            try:
                await asyncio.wait_for(self.writable.wait(), self.send_timeout)
            except TimeoutError:
                self.logger.info(
                    "WebSocket client did not read for %g s: closed (%d)",
                    self.send_timeout,
                    SLOW_CLIENT_CLOSE[0],
                )
                self._close_and_reset(*SLOW_CLIENT_CLOSE)
                raise ClientDisconnected() from None
        await super().send(message)
        if self.close_timer is not None and message["type"] == "websocket.close":
            # uvicorn's timer closes the transport, which then waits for the buffer to drain.
            self._reset_later()

    def keepalive_timeout(self) -> None:
        # As uvicorn's, but ending in a reset, not a close that waits for a silent reader.
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self._close_and_reset(1011, "keepalive ping timeout")

    def handle_parser_exception(self) -> None:
        super().handle_parser_exception()  # close 1009 (or 1002), then a close that waits
        self._reset_later()

    def _close_and_reset(self, code: int, reason: str) -> None:
        """Queue a close frame behind what the client has not read; reset the connection if the
        client has not taken it ``send_timeout`` later (uvicorn's close timer, so the end of the
        app does not close the transport first)."""
        self.stop_keepalive()
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._reset_later()

    def _reset_later(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(self.send_timeout, self._reset)

    def _reset(self) -> None:
        """Drop the connection with a TCP reset: a plain close would leave the kernel sending
        the unread buffer to a client that does not read, for as long as it keeps the window."""
        self.close_timer = None
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def protocols(settings: Settings) -> tuple[type[HttpToolsProtocol], type[SendDeadlineProtocol]]:
    """The HTTP and WebSocket protocol classes with ``settings``' limits."""
    http = type(
        "BoundedHeadProtocol",
        (BoundedHeadProtocol,),
        {"max_head_bytes": settings.api_max_header_bytes},
    )
    ws = type(
        "SendDeadlineProtocol",
        (SendDeadlineProtocol,),
        {"send_timeout": settings.ws_send_timeout_s},
    )
    return http, ws


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of :func:`uvicorn.run` (after the app) for ``settings``."""
    http, ws = protocols(settings)
    return {
        "host": settings.api_host,
        "port": settings.api_port,
        # uvicorn's loggers propagate to the root handler that ev_api.logs configured (JSON or
        # text, secrets masked) instead of getting uvicorn's own formatters.
        "log_config": None,
        "log_level": settings.log_level,
        "access_log": settings.api_access_log,
        "http": http,
        "ws": ws,
        "ws_max_size": settings.ws_max_message_bytes,
        # uvicorn pings every WebSocket and closes one whose pong does not come back in time:
        # dead clients (a laptop lid closed, a NAT that forgot the flow) free their queue.
        "ws_ping_interval": settings.ws_ping_interval_s or None,
        "ws_ping_timeout": settings.ws_ping_timeout_s,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: anyone on the host could
        # then pick their rate-limit address. Only the configured proxies are believed.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
    }

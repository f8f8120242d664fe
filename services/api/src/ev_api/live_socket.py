"""What the live WebSockets share: admission (key, query names, rate limit), closing with a
reason, and relaying until the client leaves.

A socket is accepted before any check so that a refusal reaches browsers as a close code with a
reason (1008), which JavaScript can read, rather than a bare failed handshake.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import anyio
from fastapi import WebSocket, WebSocketDisconnect, status
from starlette.websockets import WebSocketState

from ev_api.auth import websocket_key_accepted
from ev_api.deps import (
    Resources,
    client_identity,
    get_resources,
    limiter_refusal,
    unknown_query_names,
)
from ev_api.limiter import RATE_LIMITED, LimiterUnavailable, RateLimiter
from ev_api.settings import Settings

#: Sent to an alarm watcher once its subscriptions are confirmed (on the sensor socket after the
#: latest readings): every alarm event from then on reaches it, so a client that reads the alarm
#: routes after this message misses nothing in between.
SUBSCRIBED_TEXT = '{"event":"subscribed"}'
#: Sent to an alarm watcher after the fan-out's Redis connection was re-established: alarm events
#: published meanwhile are lost (pub/sub is at most once); the alarm routes have them.
GAP_TEXT = '{"event":"gap"}'

_MAX_REASON_BYTES = 123  # what a close frame can carry


class Close(Exception):
    """End the session with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def policy_violation(reason: str) -> Close:
    """A close for a request the server will not serve as asked (1008)."""
    return Close(status.WS_1008_POLICY_VIOLATION, reason)


async def admit(websocket: WebSocket, settings: Settings) -> Resources:
    """Check an accepted socket's key, then its query names, then count it against the client's
    rate limit; :class:`Close` for the first that fails. The lifespan's resources if all pass."""
    if not websocket_key_accepted(websocket, settings.accepted_keys):
        raise policy_violation("missing or invalid API key")
    unknown = unknown_query_names(websocket)
    if unknown:
        raise policy_violation(f"unknown query parameter(s): {', '.join(unknown)}")
    resources = get_resources(websocket)
    await _count_connection(websocket, resources.limiter, keyed=settings.auth_enabled)
    return resources


async def _count_connection(
    websocket: WebSocket, limiter: RateLimiter | None, *, keyed: bool
) -> None:
    """A connection attempt counts as one request against the client's rate limit."""
    if limiter is None:
        return
    try:
        decision = await limiter.hit(client_identity(websocket, keyed=keyed))
    except LimiterUnavailable:
        raise Close(status.WS_1013_TRY_AGAIN_LATER, limiter_refusal(limiter)) from None
    if not decision.allowed:
        raise Close(
            status.WS_1013_TRY_AGAIN_LATER,
            f"{RATE_LIMITED}; retry after {decision.retry_after_s} s",
        )


def overflow() -> Close:
    """The close of a client whose queue overflowed."""
    return Close(status.WS_1013_TRY_AGAIN_LATER, "client too slow: live messages were dropped")


def shutting_down() -> Close:
    return Close(status.WS_1001_GOING_AWAY, "server shutting down")


async def relay(websocket: WebSocket, forward: Callable[[], Awaitable[None]]) -> None:
    """Run ``forward`` until the client leaves (it is then cancelled) or it raises."""
    # anyio rather than asyncio tasks: the server's (and TestClient's) cancel scopes then
    # reach both halves cleanly when the connection is torn down.
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(_cancel_on_disconnect, websocket, group.cancel_scope)
        try:
            await forward()
        except Exception as exc:  # re-raised below, unwrapped from the task group
            failure = exc
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _cancel_on_disconnect(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    """Read (and ignore) client messages; when the client disconnects, stop the relay."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    scope.cancel()


async def close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``reason`` cut to what a close frame carries; nothing if already closed."""
    if websocket.application_state is not WebSocketState.CONNECTED:
        return
    reason_bytes = reason.encode()
    if len(reason_bytes) > _MAX_REASON_BYTES:
        reason = reason_bytes[: _MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code, reason)

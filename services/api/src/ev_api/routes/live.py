"""``WS /api/v1/ws/sensor/{sensor_id}``: the latest readings, then every newly stored one.

The socket is accepted before any check so that a refusal reaches browsers as a close code with a
reason (1008), which JavaScript can read, rather than a bare failed handshake.

Order matters: the live channel is subscribed (and confirmed by Redis) first, the latest values
are read second. A reading stored in between is then both in the snapshot and on the channel, and
is sent once; the other order could lose it.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect, status
from starlette.websockets import WebSocketState

from ev_api.auth import websocket_key_accepted
from ev_api.credentials import API_KEY_QUERY
from ev_api.deps import (
    SettingsDep,
    client_identity,
    get_resources,
    limiter_refusal,
    unknown_query_names,
)
from ev_api.limiter import RATE_LIMITED, LimiterUnavailable, RateLimiter
from ev_api.live_fanout import LiveReading, LiveUnavailable, Signal, Subscription
from ev_api.params import parse_type_filter
from ev_schemas import check_sensor_id
from ev_storage import ReadingReader, StorageUnavailable

router = APIRouter(tags=["live"])

_MAX_REASON_BYTES = 123  # what a close frame can carry


class _Close(Exception):
    """End the session with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@router.websocket("/ws/sensor/{sensor_id}")
async def live_sensor(
    websocket: WebSocket,
    sensor_id: str,
    settings: SettingsDep,
    types: Annotated[
        list[str] | None,
        Query(description="Types to receive, comma-separated or repeated; default all."),
    ] = None,
    api_key: Annotated[str | None, Query(alias=API_KEY_QUERY)] = None,
) -> None:
    """Push the sensor's latest readings, then each newly stored reading, as JSON text."""
    await websocket.accept()
    try:
        if not websocket_key_accepted(websocket, settings.accepted_keys):
            raise _Close(status.WS_1008_POLICY_VIOLATION, "missing or invalid API key")
        unknown = unknown_query_names(websocket)
        if unknown:
            raise _Close(
                status.WS_1008_POLICY_VIOLATION, f"unknown query parameter(s): {', '.join(unknown)}"
            )
        resources = get_resources(websocket)
        await _count_connection(websocket, resources.limiter, keyed=settings.auth_enabled)
        try:
            check_sensor_id(sensor_id)
            wanted = parse_type_filter(types, resources.catalogue)
        except ValueError as exc:
            raise _Close(status.WS_1008_POLICY_VIOLATION, str(exc)) from None
        try:
            async with resources.hub.subscribe(sensor_id) as subscription:
                session = _Session(websocket, resources.reader, sensor_id, wanted)
                await session.send_latest()
                await session.relay(subscription)
        except (LiveUnavailable, StorageUnavailable):
            raise _Close(status.WS_1013_TRY_AGAIN_LATER, "storage unavailable") from None
    except _Close as close:
        await _close(websocket, close.code, close.reason)
    except WebSocketDisconnect:
        pass  # the client left (relay also returns only then): nothing to tell it


async def _count_connection(
    websocket: WebSocket, limiter: RateLimiter | None, *, keyed: bool
) -> None:
    """A connection attempt counts as one request against the client's rate limit."""
    if limiter is None:
        return
    try:
        decision = await limiter.hit(client_identity(websocket, keyed=keyed))
    except LimiterUnavailable:
        raise _Close(status.WS_1013_TRY_AGAIN_LATER, limiter_refusal(limiter)) from None
    if not decision.allowed:
        raise _Close(
            status.WS_1013_TRY_AGAIN_LATER,
            f"{RATE_LIMITED}; retry after {decision.retry_after_s} s",
        )


class _Session:
    """One client's stream: what it asked for and what it has been sent."""

    def __init__(
        self,
        websocket: WebSocket,
        reader: ReadingReader,
        sensor_id: str,
        wanted: tuple[str, ...] | None,
    ) -> None:
        self._websocket = websocket
        self._reader = reader
        self._sensor_id = sensor_id
        self._wanted = wanted
        self._last_sent: dict[str, str] = {}
        # Latest values sent from Redis whose live message may still be on its way: sent once.
        self._sent_from_snapshot: set[str] = set()

    async def send_latest(self) -> None:
        """Send the latest reading of each wanted type, unless this client already has it."""
        latest = await self._reader.latest_all_raw(self._sensor_id)
        for sensor_type in self._wanted or latest:
            raw = latest.get(sensor_type)
            if raw is None:
                continue
            text = raw.decode()
            if self._last_sent.get(sensor_type) != text:
                await self._send(sensor_type, text)
                self._sent_from_snapshot.add(text)

    async def relay(self, subscription: Subscription) -> None:
        """Forward live readings until the client leaves or the fan-out stops the subscription."""
        # anyio rather than asyncio tasks: the server's (and TestClient's) cancel scopes then
        # reach both halves cleanly when the connection is torn down.
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_disconnect, self._websocket, group.cancel_scope)
            try:
                await self._forward(subscription)
            except Exception as exc:  # re-raised below, unwrapped from the task group
                failure = exc
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _forward(self, subscription: Subscription) -> None:
        while True:
            item = await subscription.get()
            if isinstance(item, LiveReading):
                if self._wanted is not None and item.sensor_type not in self._wanted:
                    continue
                if item.text in self._sent_from_snapshot:
                    self._sent_from_snapshot.discard(item.text)
                    continue
                await self._send(item.sensor_type, item.text)
            elif item is Signal.RESYNC:
                await self.send_latest()  # the fan-out reconnected: catch up on what was missed
            elif item is Signal.OVERFLOW:
                raise _Close(
                    status.WS_1013_TRY_AGAIN_LATER, "client too slow: live messages were dropped"
                )
            else:
                raise _Close(status.WS_1001_GOING_AWAY, "server shutting down")

    async def _send(self, sensor_type: str, text: str) -> None:
        await self._websocket.send_text(text)
        self._last_sent[sensor_type] = text


async def _cancel_on_disconnect(websocket: WebSocket, scope: anyio.CancelScope) -> None:
    """Read (and ignore) client messages; when the client disconnects, stop the relay."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass
    scope.cancel()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is not WebSocketState.CONNECTED:
        return
    reason_bytes = reason.encode()
    if len(reason_bytes) > _MAX_REASON_BYTES:
        reason = reason_bytes[: _MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code, reason)

"""``WS /api/v1/ws/alarms``: every alarm transition of the fleet as it happens, filtered.

One pattern subscription per process (``<prefix>sensor:{*}:live:alarms``) serves every client;
on a Redis Cluster a ``PUBLISH`` reaches the subscribers of every node, so the one node the
fan-out listens to hears the sensors of all. There is no snapshot: ``{"event": "subscribed"}``
comes first, once Redis confirmed the subscription, and the alarm routes read after it list
what was already there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect, status

from ev_api.alarm_filter import AlarmFilter
from ev_api.credentials import API_KEY_QUERY
from ev_api.deps import SettingsDep
from ev_api.live_fanout import LiveAlarm, LiveUnavailable, Signal, Subscription
from ev_api.live_socket import (
    GAP_TEXT,
    SUBSCRIBED_TEXT,
    Close,
    admit,
    close,
    overflow,
    policy_violation,
    relay,
    shutting_down,
)

router = APIRouter(tags=["live"])

_LIST = "comma-separated or repeated"


@router.websocket("/ws/alarms")
async def live_alarms(
    websocket: WebSocket,
    settings: SettingsDep,
    severity: Annotated[
        list[str] | None, Query(description=f"Only these severities, {_LIST}.")
    ] = None,
    sensor_type: Annotated[
        list[str] | None, Query(description=f"Only alarms of rules on these types, {_LIST}.")
    ] = None,
    rule: Annotated[list[str] | None, Query(description=f"Only these rule ids, {_LIST}.")] = None,
    prefix: Annotated[
        str, Query(description="Only sensors whose id starts with this (case-sensitive).")
    ] = "",
    api_key: Annotated[str | None, Query(alias=API_KEY_QUERY)] = None,
) -> None:
    """Push each alarm transition of the fleet that passes the filters, as JSON text."""
    await websocket.accept()
    try:
        resources = await admit(websocket, settings)
        try:
            wanted = AlarmFilter.parse(
                resources.catalogue,
                severity=severity,
                sensor_type=sensor_type,
                rule=rule,
                prefix=prefix,
            )
        except ValueError as exc:
            raise policy_violation(str(exc)) from None
        try:
            async with resources.hub.subscribe_alarms() as subscription:
                await websocket.send_text(SUBSCRIBED_TEXT)
                await relay(websocket, lambda: _forward(websocket, subscription, wanted))
        except LiveUnavailable:
            raise Close(status.WS_1013_TRY_AGAIN_LATER, "storage unavailable") from None
    except Close as refusal:
        await close(websocket, refusal.code, refusal.reason)
    except WebSocketDisconnect:
        pass  # the client left: nothing to tell it


async def _forward(websocket: WebSocket, subscription: Subscription, wanted: AlarmFilter) -> None:
    while True:
        item = await subscription.get()
        if isinstance(item, LiveAlarm):
            if wanted.matches(item.transition):
                await websocket.send_text(item.text)
        elif item is Signal.RESYNC:
            await websocket.send_text(GAP_TEXT)  # the fan-out reconnected: events may be lost
        elif item is Signal.OVERFLOW:
            raise overflow()
        elif item is Signal.CLOSED:
            raise shutting_down()

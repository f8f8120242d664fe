"""``WS /api/v1/ws/sensor/{sensor_id}``: the latest readings, then every newly stored one; with
``?alarms=true`` the sensor's alarm transitions too (``{"event": "alarm", ...}``).

Order matters: the live channels are subscribed (and confirmed by Redis) first, the latest values
are read second. A reading stored in between is then both in the snapshot and on the channel, and
is sent once; the other order could lose it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect, status

from ev_api.credentials import API_KEY_QUERY
from ev_api.deps import SettingsDep
from ev_api.live_fanout import LiveAlarm, LiveReading, LiveUnavailable, Signal, Subscription
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
from ev_api.params import parse_flag, parse_type_filter
from ev_schemas import check_sensor_id
from ev_storage import ReadingReader, StorageUnavailable

router = APIRouter(tags=["live"])


@router.websocket("/ws/sensor/{sensor_id}")
async def live_sensor(
    websocket: WebSocket,
    sensor_id: str,
    settings: SettingsDep,
    types: Annotated[
        list[str] | None,
        Query(description="Types to receive, comma-separated or repeated; default all."),
    ] = None,
    alarms: Annotated[
        str | None,
        Query(description="`true`: also the sensor's alarm events (of those types)."),
    ] = None,
    api_key: Annotated[str | None, Query(alias=API_KEY_QUERY)] = None,
) -> None:
    """Push the sensor's latest readings, then each newly stored reading, as JSON text."""
    await websocket.accept()
    try:
        resources = await admit(websocket, settings)
        try:
            check_sensor_id(sensor_id)
            wanted = parse_type_filter(types, resources.catalogue)
            with_alarms = parse_flag("alarms", alarms)
        except ValueError as exc:
            raise policy_violation(str(exc)) from None
        try:
            async with resources.hub.subscribe(sensor_id, alarms=with_alarms) as subscription:
                session = _Session(
                    websocket, resources.reader, sensor_id, wanted, alarms=with_alarms
                )
                await session.send_latest()
                if with_alarms:
                    await websocket.send_text(SUBSCRIBED_TEXT)
                await session.relay(subscription)
        except (LiveUnavailable, StorageUnavailable):
            raise Close(status.WS_1013_TRY_AGAIN_LATER, "storage unavailable") from None
    except Close as refusal:
        await close(websocket, refusal.code, refusal.reason)
    except WebSocketDisconnect:
        pass  # the client left (relay also returns only then): nothing to tell it


class _Session:
    """One client's stream: what it asked for and what it has been sent."""

    def __init__(
        self,
        websocket: WebSocket,
        reader: ReadingReader,
        sensor_id: str,
        wanted: tuple[str, ...] | None,
        *,
        alarms: bool = False,
    ) -> None:
        self._websocket = websocket
        self._reader = reader
        self._sensor_id = sensor_id
        self._wanted = wanted
        self._alarms = alarms
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
        """Forward live messages until the client leaves or the fan-out stops the subscription."""
        await relay(self._websocket, lambda: self._forward(subscription))

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
            elif isinstance(item, LiveAlarm):
                if self._wanted is None or item.transition.sensor_type in self._wanted:
                    await self._websocket.send_text(item.text)
            elif item is Signal.RESYNC:
                await self.send_latest()  # the fan-out reconnected: catch up on what was missed
                if self._alarms:
                    await self._websocket.send_text(GAP_TEXT)
            elif item is Signal.OVERFLOW:
                raise overflow()
            else:
                raise shutting_down()

    async def _send(self, sensor_type: str, text: str) -> None:
        await self._websocket.send_text(text)
        self._last_sent[sensor_type] = text

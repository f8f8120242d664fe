"""Reading a sensor's alarm episodes and acknowledging one (the hash alarms.lua keeps).

Fields of the sensor's alarm hash read here: ``e|<type>|<rule>|<began>`` (an episode:
``<raised>:<cleared>:<raised at>:<cleared at>:<severity>``) and ``a|<type>|<rule>|<began>`` (its
acknowledgement: ``<at ms>:<by>``); ``s|...`` fields are the rules' evaluation states.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ev_schemas import Alarm, from_epoch_ms
from ev_storage.clients import AsyncClient
from ev_storage.errors import InvalidArgument, StorageError, redis_errors_translated
from ev_storage.keys import KeyLayout, check_sensor_id
from ev_storage.scripts import run_scripts_async
from ev_storage.settings import StorageSettings

_ID = re.compile(
    r"([A-Za-z0-9_.-]{1,64})~([a-z0-9_]{1,64})~([a-z0-9][a-z0-9_.-]{0,63})~(-?[0-9]{1,16})"
)
_EPISODE = re.compile(rb"(-?\d+):(-?\d*):(\d*):(\d*):([a-z]*)")
_ACK = re.compile(rb"(\d+):(.*)", re.S)

# First acknowledgement wins (a repeated POST returns it); an episode that is not (or no
# longer) stored cannot be acknowledged: "" then.
_ACK_SCRIPT = """
local episode = 'e|' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], episode) == 0 then
    return ''
end
local field = 'a|' .. ARGV[1]
local existing = redis.call('HGET', KEYS[1], field)
if existing then
    return existing
end
local now = redis.call('TIME')
local text = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
    .. ':' .. ARGV[2]
redis.call('HSET', KEYS[1], field, text)
return text
"""
_ACK_SHA = hashlib.sha1(_ACK_SCRIPT.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class AlarmId:
    """Where an alarm lives: ``<sensor id>~<sensor type>~<rule id>~<began ms>``."""

    sensor_id: str
    sensor_type: str
    rule_id: str
    began_ms: int

    @classmethod
    def parse(cls, text: str) -> AlarmId:
        match = _ID.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidArgument(
                f"alarm_id {text!r:.100} is not <sensor id>~<sensor type>~<rule id>~<began ms>"
            )
        return cls(match[1], match[2], match[3], int(match[4]))

    def __str__(self) -> str:
        return f"{self.sensor_id}~{self.sensor_type}~{self.rule_id}~{self.began_ms}"

    @property
    def field_suffix(self) -> str:
        return f"{self.sensor_type}|{self.rule_id}|{self.began_ms}"


class AlarmReader:
    """A sensor's alarms, and acknowledgements (asynchronous; the client is the caller's)."""

    def __init__(self, client: AsyncClient, settings: StorageSettings) -> None:
        self._client: Any = client
        self._keys = KeyLayout(settings.key_prefix)

    async def sensor_alarms(self, sensor_id: str) -> list[Alarm]:
        """Every stored episode of the sensor, newest first (by when it began)."""
        key = self._keys.alarms(check_sensor_id(sensor_id))
        with redis_errors_translated():
            fields: dict[bytes, bytes] = await self._client.hgetall(key)
        acks = {name[2:]: value for name, value in fields.items() if name[:2] == b"a|"}
        found = [
            _alarm(sensor_id, name[2:], value, acks.get(name[2:]))
            for name, value in fields.items()
            if name[:2] == b"e|"
        ]
        found.sort(key=lambda alarm: (alarm.began, alarm.alarm_id), reverse=True)
        return found

    async def acknowledge(self, alarm_id: AlarmId, by: str) -> Alarm | None:
        """Record who acknowledged the alarm (the first one wins); None if no such alarm."""
        key = self._keys.alarms(check_sensor_id(alarm_id.sensor_id))
        (reply,) = await run_scripts_async(
            self._client, _ACK_SCRIPT, _ACK_SHA, [([key], [alarm_id.field_suffix, by])]
        )
        if not reply:
            return None
        with redis_errors_translated():
            raw = await self._client.hget(key, f"e|{alarm_id.field_suffix}")
        if raw is None:  # retracted in between
            return None
        ack = reply if isinstance(reply, bytes) else str(reply).encode()
        return _alarm(alarm_id.sensor_id, alarm_id.field_suffix.encode(), raw, ack)


def _alarm(sensor_id: str, suffix: bytes, raw: bytes, ack: bytes | None) -> Alarm:
    """An episode field (without ``e|``) and its value as the API model."""
    try:
        sensor_type, rule_id, began = suffix.decode().split("|")
        match = _EPISODE.fullmatch(raw)
        if match is None:
            raise ValueError(raw)
        raised, cleared, raised_at, cleared_at, severity = match.groups()
        acked = _ACK.fullmatch(ack) if ack else None
        return Alarm(
            alarm_id=f"{sensor_id}~{sensor_type}~{rule_id}~{began}",
            sensor_id=sensor_id,
            sensor_type=sensor_type,
            rule_id=rule_id,
            severity=severity.decode(),
            state="cleared" if cleared else "active",
            began=from_epoch_ms(int(began)),
            raised=from_epoch_ms(int(raised)),
            cleared=from_epoch_ms(int(cleared)) if cleared else None,
            raised_at=from_epoch_ms(int(raised_at)),
            cleared_at=from_epoch_ms(int(cleared_at)) if cleared_at else None,
            acked_by=acked[2].decode() if acked else None,
            acked_at=from_epoch_ms(int(acked[1])) if acked else None,
        )
    except (ValueError, UnicodeDecodeError):
        raise StorageError(f"damaged alarm episode {suffix[:100]!r}: {raw[:100]!r}") from None

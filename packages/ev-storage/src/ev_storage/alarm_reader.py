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
from ev_storage.alarm_index import alarm_group
from ev_storage.clients import AsyncClient
from ev_storage.cursor import decode_alarm_cursor, encode_alarm_cursor
from ev_storage.errors import InvalidArgument, StorageError, redis_errors_translated
from ev_storage.keys import CATALOGUE_GROUPS, KeyLayout, check_sensor_id
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


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    """Which alarms a fleet listing shows (None: any)."""

    state: str | None = None
    severity: str | None = None
    prefix: str = ""
    sensor_type: str | None = None
    rule: str | None = None

    def admits_id(self, alarm_id: str) -> bool:
        sensor_id, sensor_type, rule, _ = alarm_id.split("~")
        return (
            sensor_id.startswith(self.prefix)
            and (self.sensor_type is None or sensor_type == self.sensor_type)
            and (self.rule is None or rule == self.rule)
        )

    def admits(self, alarm: Alarm) -> bool:
        return (self.state is None or alarm.state == self.state) and (
            self.severity is None or alarm.severity == self.severity
        )


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

    async def fleet_alarms(
        self,
        where: AlarmFilter,
        *,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[Alarm], str | None]:
        """A page of the fleet's alarms, newest first (by began, then alarm id), and the cursor
        after it (None on the last page), from the fleet's alarm index (``alarm_index``).

        Id prefix, type and rule filter the index members; state and severity the episodes
        read for them, round after round (each from where the last stopped) until the page is
        full or the index is exhausted.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgument(f"limit must be a positive integer, got {limit!r}")
        after = None if cursor is None else decode_alarm_cursor(cursor)
        which = "active" if where.state == "active" else "all"
        keys = [self._keys.alarm_index(group, which) for group in range(CATALOGUE_GROUPS)]
        found: list[Alarm] = []
        want = limit + 1
        while True:
            candidates, exhausted = await self._candidates(keys, after, want * 2)
            members = [m for m in candidates if where.admits_id(m[1])]
            alarms = await self._episodes(members)
            for (began, member), alarm in zip(members, alarms, strict=True):
                after = (began, member)
                if alarm is not None and where.admits(alarm):
                    found.append(alarm)
                    if len(found) == want:
                        break
            if len(found) == want or exhausted or not candidates:
                break
            after = candidates[-1]
        more = len(found) > limit
        page = found[:limit]
        last = page[-1] if page else None
        next_cursor = (
            encode_alarm_cursor(int(last.began.timestamp() * 1000), last.alarm_id)
            if more and last is not None
            else None
        )
        return page, next_cursor

    async def active_counts(self) -> dict[tuple[str, str], int]:
        """How many alarms are active in the fleet, by (severity, rule id)."""
        keys = [self._keys.alarm_index(group, "active") for group in range(CATALOGUE_GROUPS)]
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.zrange(key, 0, -1, withscores=True)
            replies: list[list[tuple[bytes, float]]] = await pipe.execute()
        members = [(int(score), name.decode()) for reply in replies for name, score in reply]
        counts: dict[tuple[str, str], int] = {}
        for alarm in await self._episodes(members):
            if alarm is not None and alarm.state == "active":
                label = (str(alarm.severity), alarm.rule_id)
                counts[label] = counts.get(label, 0) + 1
        return counts

    async def _candidates(
        self, keys: list[str], after: tuple[int, str] | None, count: int
    ) -> tuple[list[tuple[int, str]], bool]:
        """The next ``count`` index members after ``after`` over every group, newest first,
        and whether every group is exhausted by them."""
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                # Strictly below the cursor's score, `count` at most; and every member at its
                # score (ties sort by member), of which those before the cursor's member.
                top = "+inf" if after is None else f"({after[0]}"
                pipe.zrevrangebyscore(key, top, "-inf", start=0, num=count, withscores=True)
                if after is not None:
                    pipe.zrangebyscore(key, after[0], after[0], withscores=True)
            replies: list[list[tuple[bytes, float]]] = await pipe.execute()
        merged: list[tuple[int, str]] = []
        exhausted = True
        step = 1 if after is None else 2
        for n in range(0, len(replies), step):
            lower = replies[n]
            merged += [(int(score), name.decode()) for name, score in lower]
            if len(lower) == count:
                exhausted = False
            if after is not None:
                ties = [(int(score), name.decode()) for name, score in replies[n + 1]]
                merged += [item for item in ties if item < after]
        merged.sort(reverse=True)
        if len(merged) > count:
            # Only what every unexhausted group is sure to have returned in order.
            merged, exhausted = merged[:count], False
        return merged, exhausted

    async def _episodes(self, members: list[tuple[int, str]]) -> list[Alarm | None]:
        """The episodes (with acknowledgements) of index members; None where it is gone.

        Repairs the index on the way: a member whose episode is gone (its sensor cleaned it
        up, or its history expired) leaves both sets, a cleared one leaves the active set (a
        slower writer applied an older transition after a newer one)."""
        if not members:
            return []
        ids = [AlarmId.parse(member) for _, member in members]
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for alarm in ids:
                key = self._keys.alarms(alarm.sensor_id)
                pipe.hmget(key, f"e|{alarm.field_suffix}", f"a|{alarm.field_suffix}")
            replies: list[list[bytes | None]] = await pipe.execute()
        found = [
            None if raw is None else _alarm(alarm.sensor_id, alarm.field_suffix.encode(), raw, ack)
            for alarm, (raw, ack) in zip(ids, replies, strict=True)
        ]
        stale = [
            (alarm, episode is None)
            for alarm, episode in zip(ids, found, strict=True)
            if episode is None or episode.state == "cleared"
        ]
        if stale:
            with redis_errors_translated():
                pipe = self._client.pipeline(transaction=False)
                for alarm, gone in stale:
                    group = alarm_group(alarm.sensor_id)
                    pipe.zrem(self._keys.alarm_index(group, "active"), str(alarm))
                    if gone:
                        pipe.zrem(self._keys.alarm_index(group, "all"), str(alarm))
                await pipe.execute()
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

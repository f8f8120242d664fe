"""The fleet's alarm index: every alarm episode by when it began, and the active ones.

Two sorted sets per group of sensors (CRC-32 of the id modulo 64, like the catalogue's groups,
so the index spreads over a cluster's slots): ``alarms:{a:<g>}:all`` and ``...:active``, score
the episode's began ms, member its alarm id (``<sensor>~<type>~<rule>~<began>``). The write
script keeps each transition pending in the sensor's alarm hash; :class:`AlarmIndex` applies
them here, then acknowledges them (``ack_pending.lua``). Applying is idempotent (set
operations that end in the episode's last state), so a transition applied twice, after a
writer died before acknowledging, changes nothing. With ``outbox``, each transition is also
appended to the alarm outbox in the same pipeline (``ev_storage.alarm_outbox``), a transition
applied twice then twice with the same idempotency key.
"""

from __future__ import annotations

import hashlib
import zlib
from functools import cache
from importlib import resources
from typing import Any

from ev_storage.alarm_outbox import queue_transition
from ev_storage.alarm_transitions import AlarmTransition
from ev_storage.clients import SyncClient
from ev_storage.errors import connection_errors_translated
from ev_storage.keys import CATALOGUE_GROUPS, KeyLayout
from ev_storage.scripts import run_scripts


def alarm_group(sensor_id: str) -> int:
    """The index group of a sensor's alarms."""
    return zlib.crc32(sensor_id.encode("ascii")) % CATALOGUE_GROUPS


def alarm_id(transition: AlarmTransition) -> str:
    t = transition
    return f"{t.sensor_id}~{t.sensor_type}~{t.rule_id}~{t.began_ms}"


@cache
def _ack_script() -> tuple[str, str]:
    source = resources.files("ev_storage").joinpath("ack_pending.lua").read_text(encoding="utf-8")
    return source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class AlarmIndex:
    """Applies alarm transitions to the fleet's index (the writer's side, synchronous)."""

    def __init__(
        self, client: SyncClient, keys: KeyLayout, retention_ms: int, *, outbox: bool = False
    ) -> None:
        self._client, self._keys, self._retention_ms = client, keys, retention_ms
        self._outbox = outbox

    def apply(self, drained: dict[str, tuple[list[str], list[AlarmTransition]]]) -> None:
        """Index the transitions of each sensor (its pending lines, and them parsed), then
        acknowledge those lines in the sensor's alarm hash."""
        if not drained:
            return
        with connection_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for lines, transitions in drained.values():
                for line, transition in zip(lines, transitions, strict=True):
                    self._queue(pipe, transition)
                    if self._outbox:
                        queue_transition(pipe, self._keys, line, transition)
            pipe.execute()
        source, sha = _ack_script()
        calls = [
            ([self._keys.alarms(sensor_id)], lines) for sensor_id, (lines, _) in drained.items()
        ]
        run_scripts(self._client, source, sha, calls)

    def _queue(self, pipe: Any, t: AlarmTransition) -> None:
        group = alarm_group(t.sensor_id)
        every = self._keys.alarm_index(group, "all")
        active = self._keys.alarm_index(group, "active")
        member = alarm_id(t)
        if t.kind == "retracted":
            pipe.zrem(every, member)
            pipe.zrem(active, member)
            return
        pipe.zadd(every, {member: t.began_ms})
        if t.cleared_ms is None:
            pipe.zadd(active, {member: t.began_ms})
        else:
            pipe.zrem(active, member)
        # A bound on size: episodes that began two retentions before this one's newest reading
        # (measurement time) leave the list of all (their sensor drops them a retention after
        # they cleared: only one longer than a retention is left out early); an active one
        # stays in the active set until it clears. Members whose episode is gone are removed
        # by the readers that meet them (AlarmReader).
        newest = t.raised_ms if t.cleared_ms is None else t.cleared_ms
        pipe.zremrangebyscore(every, "-inf", f"({newest - 2 * self._retention_ms}")

"""The staleness sweep: stale sensors found in the fleet catalogue, judged by ``stale.lua``.

Each sweep, per staleness rule: the catalogue's per-type sorted sets (score: the type's newest
reading, measurement time) give the sensors whose newest reading is older than now minus
``stale_after``, and the fleet's active alarm index gives the stale episodes still open. Only
the differences are judged, by ``stale.lua`` in the sensor's slot: newly silent sensors (raise)
and open episodes whose sensor reads again (clear). The script decides on the stored history
and the server's clock, atomically, so sweeps by several consumers at once raise one episode
per silence. Transitions are indexed and acknowledged like the write script's.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Protocol

from ev_storage.alarm_index import AlarmIndex
from ev_storage.alarm_transitions import AlarmTransition
from ev_storage.clients import SyncClient
from ev_storage.errors import redis_errors_translated
from ev_storage.keys import CATALOGUE_GROUPS, KeyLayout
from ev_storage.scripts import run_scripts
from ev_storage.settings import StorageSettings


class SweepRule(Protocol):
    """What the sweep needs of a staleness rule (``ev_schemas.StaleRule`` has it)."""

    @property
    def id(self) -> str: ...

    @property
    def sensor_type(self) -> str: ...

    @property
    def sensor_prefix(self) -> str: ...

    @property
    def stale_after_ms(self) -> int: ...

    @property
    def severity(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep found: sensors judged, and the transitions made."""

    judged: int
    transitions: list[AlarmTransition]


@cache
def _script() -> tuple[str, str]:
    source = resources.files("ev_storage").joinpath("stale.lua").read_text(encoding="utf-8")
    return source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class StalenessSweep:
    """Finds and judges stale sensors (synchronous: run by the consumer on a timer)."""

    def __init__(
        self,
        client: SyncClient,
        settings: StorageSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._keys = KeyLayout(settings.key_prefix)
        self._shards = settings.catalogue_shards
        self._index = AlarmIndex(
            client, self._keys, settings.retention_ms, outbox=settings.alarm_outbox
        )
        self._clock = clock

    def sweep(self, rules: Sequence[SweepRule]) -> SweepResult:
        """One sweep over every rule; raises :class:`StorageError` for Redis errors."""
        if not rules:
            return SweepResult(0, [])
        now_ms = int(self._clock() * 1000)
        open_episodes = self._open(rules)
        calls: list[tuple[str, SweepRule]] = []
        for rule in rules:
            silent = self._silent(rule, now_ms - rule.stale_after_ms)
            known = open_episodes.get(rule.id, set())
            # Newly silent (raise), and open episodes of sensors no longer silent (clear).
            calls += [(sensor, rule) for sensor in sorted(silent - known)]
            calls += [(sensor, rule) for sensor in sorted(known - silent)]
        if not calls:
            return SweepResult(0, [])
        source, sha = _script()
        replies = run_scripts(
            self._client,
            source,
            sha,
            [
                (
                    [
                        self._keys.alarms(sensor),
                        self._keys.history(sensor, rule.sensor_type),
                        self._keys.alarm_episodes(sensor),
                    ],
                    [
                        rule.sensor_type,
                        rule.id,
                        str(rule.stale_after_ms),
                        rule.severity,
                        self._keys.alarm_channel(sensor),
                    ],
                )
                for sensor, rule in calls
            ],
        )
        drained: dict[str, tuple[list[str], list[AlarmTransition]]] = {}
        found: list[AlarmTransition] = []
        for (sensor, _), reply in zip(calls, replies, strict=True):
            lines = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in reply]
            parsed = [AlarmTransition.parse(sensor, line) for line in lines]
            found += parsed
            if lines:
                before = drained.get(sensor, ([], []))
                drained[sensor] = (before[0] + lines, before[1] + parsed)
        self._index.apply(drained)
        return SweepResult(len(calls), found)

    def _silent(self, rule: SweepRule, threshold_ms: int) -> set[str]:
        """Sensors of the rule's prefix whose newest reading of its type is before the
        threshold, from the catalogue's per-type sets."""
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for shard in range(self._shards):
                key = self._keys.catalogue_type(shard, rule.sensor_type)
                pipe.zrangebyscore(key, "-inf", f"({threshold_ms}")
            replies: list[list[bytes]] = pipe.execute()
        return {
            name.decode()
            for reply in replies
            for name in reply
            if name.decode().startswith(rule.sensor_prefix)
        }

    def _open(self, rules: Sequence[SweepRule]) -> dict[str, set[str]]:
        """The sensors with an open episode of each staleness rule (from the active index)."""
        ids = {rule.id: rule.sensor_type for rule in rules}
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for group in range(CATALOGUE_GROUPS):
                pipe.zrange(self._keys.alarm_index(group, "active"), 0, -1)
            replies: list[list[bytes]] = pipe.execute()
        found: dict[str, set[str]] = {}
        for reply in replies:
            for member in reply:
                sensor, sensor_type, rule, _ = member.decode().split("~")
                if ids.get(rule) == sensor_type:
                    found.setdefault(rule, set()).add(sensor)
        return found

"""Writing readings: one atomic, idempotent Lua call per reading, pipelined per batch."""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ev_schemas import Reading, timestamp_ms
from ev_storage.alarm_index import AlarmIndex
from ev_storage.alarm_transitions import AlarmTransition, ScriptRule, applicable, rule_args
from ev_storage.catalogue import CatalogueIndex, IndexEntry
from ev_storage.clients import SyncClient
from ev_storage.errors import InvalidArgument, StorageError
from ev_storage.history import pack_value
from ev_storage.keys import KeyLayout
from ev_storage.scripts import run_scripts
from ev_storage.settings import StorageSettings

#: The write script, in parts: storing, alarm evaluation, the main loop (one chunk, in order).
SCRIPT_RESOURCES = ("store_reading.lua", "alarms.lua", "store_main.lua")


class WriteOutcome(enum.StrEnum):
    """What the write script did with one reading."""

    STORED = "stored"
    """New: history, summary and perhaps latest updated, and published on the live channel."""
    DUPLICATE = "duplicate"
    """Same sensor, type, timestamp and value already stored; nothing changed."""
    CONFLICT = "conflict"
    """Same sensor, type and timestamp already stored with another value; nothing changed (first
    write wins), so the caller should keep this copy somewhere visible."""
    EXPIRED = "expired"
    """Older than the retention window behind the newest stored reading of its type; dropped."""


_OUTCOMES = {
    1: WriteOutcome.STORED,
    0: WriteOutcome.DUPLICATE,
    2: WriteOutcome.CONFLICT,
    -1: WriteOutcome.EXPIRED,
}
#: Readings of one sensor per script call: bounds how long one call holds Redis (~15 µs each).
MAX_READINGS_PER_CALL = 100
_KEY_CACHE_SIZE = 100_000


@cache
def script_source() -> str:
    """The Lua write script shipped with this package (its parts, joined)."""
    files = resources.files("ev_storage")
    return "\n".join(files.joinpath(name).read_text(encoding="utf-8") for name in SCRIPT_RESOURCES)


class ReadingWriter:
    """Stores validated readings in Redis (synchronous: the consumer's batch loop uses it).

    Each reading is stored by the write script atomically and idempotently (one ``EVALSHA``
    stores a sensor's readings of the batch, one after the other), so a redelivered batch or a
    retried call stores and publishes nothing twice. Then it records the readings in the fleet
    catalogue (:class:`~ev_storage.catalogue.CatalogueIndex`), before returning: a caller that
    acknowledges only after :meth:`store_many` returned never loses a catalogue update, since a
    redelivered reading updates it again. ``client`` is a
    single-server or a cluster client (a call touches one sensor's keys: one slot). The client
    is the caller's: this class neither connects at construction nor closes it.
    """

    def __init__(
        self,
        client: SyncClient,
        settings: StorageSettings,
        alarm_rules: Sequence[ScriptRule] = (),
    ) -> None:
        self._client = client
        self._keys = KeyLayout(settings.key_prefix)
        self._source = script_source()
        self._sha = hashlib.sha1(self._source.encode(), usedforsecurity=False).hexdigest()
        # Per deployment, not per reading; "0" tells the script "no expiry".
        self._fixed_args = (
            str(settings.retention_ms),
            str(settings.latest_ttl_ms or 0),
            str(settings.summary_ttl_ms or 0),
        )
        self._bucket_args = (
            str(settings.history_bucket_ms),
            "1" if settings.history_rollups else "0",
        )
        self._catalogue = CatalogueIndex(client, self._keys, settings.catalogue_shards)
        self._alarm_index = AlarmIndex(
            client, self._keys, settings.retention_ms, outbox=settings.alarm_outbox
        )
        # Keys are checked and formatted once per sensor (and type), not once per reading.
        self._sensor_cache: dict[str, tuple[str, str]] = {}
        self._type_cache: dict[tuple[str, str], tuple[str, str]] = {}
        self.set_alarm_rules(alarm_rules)
        #: The alarm transitions of the last :meth:`store_many` call, in order.
        self.last_transitions: list[AlarmTransition] = []

    def set_alarm_rules(self, rules: Sequence[ScriptRule]) -> None:
        """The alarm rules evaluated from the next call on (docs/alarms.md)."""
        self._rules = list(rules)
        self._rules_of_sensor: dict[str, list[ScriptRule]] = {}

    @property
    def keys(self) -> KeyLayout:
        return self._keys

    @property
    def catalogue(self) -> CatalogueIndex:
        return self._catalogue

    def store(self, reading: Reading) -> WriteOutcome:
        """Store one reading; see :meth:`store_many`."""
        return self.store_many([reading])[0]

    def store_many(self, readings: Sequence[Reading]) -> list[WriteOutcome]:
        """Store ``readings`` in one pipeline; outcomes in the same order.

        The readings of one sensor share a call of the write script (one slot on a cluster,
        one round of Redis's per-call work), each stored as if alone, in the given order.

        The calls go out as ``EVALSHA``; those a server answers with NOSCRIPT (a new or
        restarted server, a cluster node added or failed over) are sent again once the script
        is loaded on every primary. (redis-py's cluster pipeline refuses ``Script`` objects.)

        Raises :class:`~ev_storage.StorageUnavailable` when Redis cannot be reached or is busy
        (some readings may then be stored: repeating the call is safe),
        :class:`~ev_storage.InvalidArgument` before anything is sent if a reading cannot be keyed
        or has a non-finite value, :class:`~ev_storage.StorageError` for any other Redis error.
        """
        if not readings:
            return []
        grouped = self._calls_of(readings)
        calls = [(call.keys, call.args) for call in grouped]
        replies = run_scripts(self._client, self._source, self._sha, calls)
        outcomes: list[WriteOutcome] = [WriteOutcome.STORED] * len(readings)
        entries: list[IndexEntry] = []
        transitions: list[AlarmTransition] = []
        drained: dict[str, tuple[list[str], list[AlarmTransition]]] = {}
        for call, reply in zip(grouped, replies, strict=True):
            if not isinstance(reply, list) or len(reply) < 2 * len(call.indices):
                raise StorageError(f"unexpected reply from the write script: {reply!r:.200}")
            if call.rules:
                sensor_id = readings[call.indices[0]].sensor_id
                new, lines = _pending(reply[2 * len(call.indices) :])
                parsed = [AlarmTransition.parse(sensor_id, line) for line in lines]
                if new:
                    transitions += parsed[-new:]
                if lines:
                    # The newest call's view of the sensor's pending transitions is complete.
                    drained[sensor_id] = (lines, parsed)
            for n, index in enumerate(call.indices):
                outcomes[index] = outcome = _outcome(reply[2 * n])
                if outcome is not WriteOutcome.EXPIRED:
                    # Stored now or before (a duplicate, or a conflict's first value): the
                    # catalogue learns or relearns it, with the history's current expiry.
                    reading = readings[index]
                    entries.append(
                        IndexEntry(
                            reading.sensor_id,
                            reading.sensor_type,
                            timestamp_ms(reading),
                            _expiry(reply[2 * n + 1]),
                        )
                    )
        self._catalogue.update(entries)
        # Before returning, so before the caller acknowledges: a writer that dies here leaves
        # them pending, and the next call for the sensor (a redelivery too) returns them again.
        self._alarm_index.apply(drained)
        self.last_transitions = transitions
        return outcomes

    def _calls_of(self, readings: Sequence[Reading]) -> list[_Call]:
        """One script call per sensor (and per :data:`MAX_READINGS_PER_CALL`), in order."""
        by_sensor: dict[str, list[int]] = {}
        for index, reading in enumerate(readings):
            if not math.isfinite(reading.value):
                # Built with model_construct, validation skipped: inf/NaN would poison the sums.
                raise InvalidArgument(f"reading value must be finite, got {reading.value!r}")
            by_sensor.setdefault(reading.sensor_id, []).append(index)
        calls = []
        for sensor_id, indices in by_sensor.items():
            summary_key, channel = self._sensor_keys(sensor_id)
            rules = self._sensor_rules(sensor_id)
            for start in range(0, len(indices), MAX_READINGS_PER_CALL):
                chunk = indices[start : start + MAX_READINGS_PER_CALL]
                keys = [summary_key]
                args: list[str | bytes] = [*self._fixed_args, channel, *self._bucket_args]
                types = {readings[index].sensor_type for index in chunk}
                applying = [rule for rule in rules if rule.sensor_type in types]
                args.append(str(len(applying)))
                for rule in applying:
                    args += rule_args(rule)
                for index in chunk:
                    reading = readings[index]
                    value = float(reading.value)
                    keys += self._type_keys(sensor_id, reading.sensor_type)
                    args += (
                        str(timestamp_ms(reading)),
                        # repr: the shortest text that parses back to the same float, in Lua too.
                        repr(value),
                        reading.to_json(),
                        reading.sensor_type,
                        # The history stores the double's 8 bytes: exact, whatever Lua makes of
                        # the text.
                        pack_value(value),
                    )
                if applying:
                    keys += (self._keys.alarms(sensor_id), self._keys.alarm_episodes(sensor_id))
                calls.append(_Call(chunk, keys, args, bool(applying)))
        return calls

    def _sensor_rules(self, sensor_id: str) -> list[ScriptRule]:
        """The alarm rules whose prefix the sensor matches, found once per sensor."""
        found = self._rules_of_sensor.get(sensor_id)
        if found is None:
            if len(self._rules_of_sensor) >= _KEY_CACHE_SIZE:
                self._rules_of_sensor.clear()
            found = self._rules_of_sensor[sensor_id] = applicable(self._rules, sensor_id)
        return found

    def _sensor_keys(self, sensor_id: str) -> tuple[str, str]:
        """(summary key, live channel), built and checked once per sensor."""
        found = self._sensor_cache.get(sensor_id)
        if found is None:
            if len(self._sensor_cache) >= _KEY_CACHE_SIZE:
                self._sensor_cache.clear()
            found = self._sensor_cache[sensor_id] = (
                self._keys.summary(sensor_id),
                self._keys.live_channel(sensor_id),
            )
        return found

    def _type_keys(self, sensor_id: str, sensor_type: str) -> tuple[str, str]:
        """(latest key, history key), built and checked once per sensor and type."""
        found = self._type_cache.get((sensor_id, sensor_type))
        if found is None:
            if len(self._type_cache) >= _KEY_CACHE_SIZE:
                self._type_cache.clear()
            found = self._type_cache[sensor_id, sensor_type] = (
                self._keys.latest(sensor_id, sensor_type),
                self._keys.history(sensor_id, sensor_type),
            )
        return found


@dataclass(frozen=True, slots=True)
class _Call:
    """One call of the write script: the readings it stores (their indices), keys, arguments."""

    indices: list[int]
    keys: list[str]
    args: list[str | bytes]
    #: Alarm rules went with the call: its reply carries the pending transitions.
    rules: bool = False


def _pending(tail: list[Any]) -> tuple[int, list[str]]:
    """The number of new transitions and every pending one, from the reply after the outcomes."""
    try:
        new = int(tail[0])
        lines = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in tail[1:]]
    except (IndexError, TypeError, ValueError, UnicodeDecodeError):
        raise StorageError(f"unexpected alarm reply from the write script: {tail!r:.200}") from None
    if not 0 <= new <= len(lines):
        raise StorageError(f"unexpected alarm reply from the write script: {tail!r:.200}")
    return new, lines


def _expiry(reply: Any) -> int:
    try:
        return int(reply)
    except (TypeError, ValueError):
        raise StorageError(f"unexpected expiry from the write script: {reply!r}") from None


def _outcome(reply: Any) -> WriteOutcome:
    try:
        return _OUTCOMES[int(reply)]
    except (KeyError, TypeError, ValueError):
        raise StorageError(f"unexpected reply from the write script: {reply!r}") from None

"""The fleet catalogue's index, writer side: which sensors exist, their types and newest times.

The index is sharded by a stable hash of the sensor id (CRC-32) over ``catalogue_shards`` small
shards (about 100 sensors each, so that Redis keeps their sorted sets compact), in 64 groups; a
group's keys share a hash tag (``{c:<g>}``), so one Lua call updates or reads a group atomically
and, on Redis Cluster, the groups spread over slots and nodes. The write script's keys stay in their
sensor's slot: the index is updated by a second pipeline, after the write and before the caller
acknowledges anything, from what the write script returned (see ``catalogue.lua`` and
docs/storage.md).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ev_storage.clients import SyncClient
from ev_storage.errors import InvalidKey, redis_errors_translated
from ev_storage.keys import CATALOGUE_GROUPS, KeyLayout, check_sensor_id, check_sensor_type
from ev_storage.scripts import run_scripts

SCRIPT_RESOURCE = "catalogue.lua"
#: Entries of one shard per update call: bounds how long one call holds Redis.
MAX_ENTRIES_PER_CALL = 200


@cache
def catalogue_script() -> tuple[str, str]:
    """The catalogue's Lua script shipped with this package, and its SHA-1."""
    source = resources.files("ev_storage").joinpath(SCRIPT_RESOURCE).read_text(encoding="utf-8")
    return source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


def shard_of(sensor_id: str, shards: int) -> int:
    """The catalogue shard of a sensor: CRC-32 of its id modulo ``shards`` (stable everywhere)."""
    return zlib.crc32(sensor_id.encode("ascii")) % shards


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A stored reading as the catalogue sees it: its sensor, type and time, and when the
    history key holding it expires (server time, ms, as the write script returned it)."""

    sensor_id: str
    sensor_type: str
    ms: int
    expires_ms: int


class CatalogueIndex:
    """Keeps the fleet catalogue up to date (synchronous, used by :class:`ReadingWriter`).

    :meth:`update` is idempotent and order-free: every value is a maximum (a type's newest
    reading time, its history's expiry), so repeating entries, or applying them in any order or
    any grouping, ends in the same index. The client is the caller's.
    """

    def __init__(self, client: SyncClient, keys: KeyLayout, shards: int) -> None:
        self._client = client
        self._keys = keys
        self._shards = shards
        self._source, self._sha = catalogue_script()

    @property
    def shards(self) -> int:
        return self._shards

    def update(self, entries: Iterable[IndexEntry]) -> None:
        """Record ``entries`` in one pipeline, one script call per group of shards (and per
        :data:`MAX_ENTRIES_PER_CALL`). Raises :class:`~ev_storage.StorageUnavailable` when Redis
        cannot be reached (repeating the call is safe), :class:`~ev_storage.StorageError` for
        any other Redis error."""
        by_group: dict[int, list[str]] = {}
        for entry in entries:
            check_sensor_id(entry.sensor_id)
            check_sensor_type(entry.sensor_type)
            shard = shard_of(entry.sensor_id, self._shards)
            args = by_group.setdefault(shard % CATALOGUE_GROUPS, [])
            args += (
                str(shard),
                entry.sensor_id,
                entry.sensor_type,
                str(entry.ms),
                str(entry.expires_ms),
            )
        calls: list[tuple[list[str], list[str]]] = []
        step = 5 * MAX_ENTRIES_PER_CALL
        for group, args in by_group.items():
            key = self._keys.catalogue_group(group)
            for start in range(0, len(args), step):
                calls.append(([key], ["update", *args[start : start + step]]))
        if calls:
            run_scripts(self._client, self._source, self._sha, calls)

    def sweep(self) -> int:
        """Remove what has expired from every shard now (reads and updates also do it lazily);
        returns the number of sensors left in the catalogue."""
        calls = [
            ([self._keys.catalogue_group(group)], ["count", "", "", "", "", *map(str, shards)])
            for group, shards in groups(self._shards).items()
        ]
        replies = run_scripts(self._client, self._source, self._sha, calls)
        return sum(int(reply) for reply in replies)

    def rebuild(self, *, batch: int = 500) -> int:
        """Index every history key that exists: after an upgrade from a version without the
        catalogue, or after ``catalogue_shards`` changed (delete ``{prefix}catalogue:*`` first).
        Safe while consumers write (every update is a maximum); returns the histories indexed.

        Reads each history's newest reading time (its ``meta`` field) and its expiry, in
        pipelines of ``batch`` keys; on a cluster the scan visits every primary.
        """
        pattern = f"{self._keys.prefix}sensor:{{*}}:*:history"
        found: list[tuple[str, str, str]] = []
        indexed = 0
        with redis_errors_translated():
            for raw in self._client.scan_iter(match=pattern, count=1000):
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                parsed = _history_key_parts(key, self._keys.prefix)
                if parsed is not None:
                    found.append((key, *parsed))
                if len(found) >= batch:
                    indexed += self._index_histories(found)
                    found = []
            if found:
                indexed += self._index_histories(found)
        return indexed

    def _index_histories(self, found: list[tuple[str, str, str]]) -> int:
        pipe: Any = self._client.pipeline(transaction=False)
        for key, _, _ in found:
            pipe.hget(key, "meta")
            pipe.execute_command("PEXPIRETIME", key)
        replies: list[Any] = pipe.execute()
        entries = []
        for n, (_, sensor_id, sensor_type) in enumerate(found):
            meta, expires = replies[2 * n], replies[2 * n + 1]
            if meta is None or int(expires) < 0:
                continue  # gone (expired) since the scan saw it
            text = meta.decode() if isinstance(meta, bytes) else str(meta)
            entries.append(
                IndexEntry(sensor_id, sensor_type, int(text.split(":")[1]), int(expires))
            )
        self.update(entries)
        return len(entries)


def _history_key_parts(key: str, prefix: str) -> tuple[str, str] | None:
    """(sensor id, type) of ``{prefix}sensor:{<id>}:<type>:history``; None for anything else."""
    rest = key.removeprefix(f"{prefix}sensor:{{")
    sensor_id, _, tail = rest.partition("}:")
    sensor_type = tail.removesuffix(":history")
    if rest == key or not tail.endswith(":history") or ":" in sensor_type:
        return None
    try:
        return check_sensor_id(sensor_id), check_sensor_type(sensor_type)
    except InvalidKey:
        return None


def groups(shards: int) -> dict[int, list[int]]:
    """The shards of each group (the slot they share): shard n is in group n % 64."""
    found: dict[int, list[int]] = {}
    for shard in range(shards):
        found.setdefault(shard % CATALOGUE_GROUPS, []).append(shard)
    return found

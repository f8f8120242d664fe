"""The fleet catalogue, read side: pages of sensors and counts over every shard (asynchronous).

Each of the 64 groups of shards (one slot each) answers with one call of ``catalogue.lua``:
filters applied and the group's shards merged in Redis, next to the data, so a group returns
only its first few matches in order. The calls of a round go out in one pipeline (a cluster
client sends each to its slot's node), and the 64 short lists are merged here. A group is first
asked for about twice its share of a page; only groups that might hold items before the page's
end are asked again. Every answer says how far it is complete, so the merge knows which items
are final: pages have no gaps and no repeats, and a cursor names a point of a total order (the
id, or the last-seen time and the id), so readings that arrive between two pages move a sensor
but never shift the others.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ev_schemas import Catalogue, shown, to_epoch_ms, to_epoch_ms_ceil
from ev_storage.catalogue import catalogue_script, groups, shard_of
from ev_storage.clients import AsyncClient
from ev_storage.cursor import (
    CATALOGUE_ORDERS,
    decode_catalogue_cursor,
    encode_catalogue_cursor,
)
from ev_storage.errors import (
    InvalidArgument,
    StorageError,
    UnknownSensorType,
    redis_errors_translated,
)
from ev_storage.keys import CATALOGUE_GROUPS, KeyLayout
from ev_storage.scripts import run_scripts_async
from ev_storage.settings import StorageSettings

#: What a prefix filter may hold: the start of a sensor id.
ID_PREFIX_RE = re.compile(r"[A-Za-z0-9_.\-]{0,64}")
#: Members of the last-seen order: 15 digits of (ms + OFFSET), ':', the id.
_SEEN_DIGITS = 15
_OFFSET = 62_135_596_800_000  # ms from 0001-01-01 to the epoch: the script's OFFSET
#: Index members a shard may look at in one call, beyond what it returns (filters that match
#: few sensors): bounds each call's time in Redis; the merge asks again where needed.
SCAN_BUDGET = 2000


@dataclass(frozen=True, slots=True)
class CatalogueFilter:
    """Which sensors: ids starting with ``prefix``, with readings of ``sensor_type``, last seen
    (newest reading of any type) within ``seen_after`` .. ``seen_before``, both inclusive."""

    prefix: str = ""
    sensor_type: str | None = None
    seen_after: datetime | None = None
    seen_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """A sensor of the catalogue: its types with the newest reading time of each (ms)."""

    sensor_id: str
    types: dict[str, int]

    @property
    def last_seen_ms(self) -> int:
        return max(self.types.values())


@dataclass(frozen=True, slots=True)
class CataloguePage:
    items: list[CatalogueItem]
    next_cursor: str | None


@dataclass(slots=True)
class _Group:
    """Where one group's merged scan stands during a page."""

    group: int
    start: bytes
    exhausted: bool = False
    frontier: bytes = b""
    items: list[bytes] = field(default_factory=list)


class CatalogueReader:
    """Lists and counts the sensors of the fleet catalogue (asynchronous, used by the API).

    The client is the caller's (one server or a cluster, with or without
    ``decode_responses``). Reads remove what has expired from each shard first, so a sensor
    whose readings have all expired is never listed or counted.
    """

    def __init__(
        self,
        client: AsyncClient,
        settings: StorageSettings,
        catalogue: Catalogue,
        *,
        bytewise: bool = False,
    ) -> None:
        self._client: Any = client
        self._catalogue = catalogue
        self._keys = KeyLayout(settings.key_prefix)
        self._shards = settings.catalogue_shards
        self._groups = groups(settings.catalogue_shards)
        # How the script orders members when it merges shards: by Lua's < where the server's
        # locale collates by bytes, else byte by byte; ``bytewise`` forces the latter (tests).
        self._collation = "bytes" if bytewise else "auto"
        self._source, self._sha = catalogue_script()

    @property
    def keys(self) -> KeyLayout:
        return self._keys

    async def count(self, where: CatalogueFilter) -> int:
        """The number of sensors that match: one call per group of shards, summed."""
        args = ["count", *self._filter_args(where)]
        calls = [
            ([self._keys.catalogue_group(group)], [*args, *map(str, shards)])
            for group, shards in self._groups.items()
        ]
        return sum(int(reply) for reply in await self._run(calls))

    async def page(
        self,
        where: CatalogueFilter,
        *,
        order: str = "id",
        limit: int = 100,
        cursor: str | None = None,
    ) -> CataloguePage:
        """One page of matching sensors, by id (ascending) or by last seen (newest first; ties by
        id, descending). ``next_cursor`` continues after the page; None on the last page.

        Raises :class:`InvalidCursor`, :class:`UnknownSensorType` or :class:`InvalidArgument`
        for bad arguments.
        """
        if order not in CATALOGUE_ORDERS:
            raise InvalidArgument(f"order must be one of {', '.join(CATALOGUE_ORDERS)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgument(f"limit must be a positive integer, got {limit!r}")
        filters = self._filter_args(where)
        after = None if cursor is None else decode_catalogue_cursor(cursor, order)
        by_seen = order == "last_seen"
        start, end = _bounds(where.prefix, filters, after, by_seen)
        if start is None:
            return CataloguePage([], None)
        groups_ = [_Group(group, start) for group in self._groups]
        # Each group (one slot) merges its shards in the script and answers its first `want`
        # matches; the first round asks for about twice a group's share of the page, so that a
        # second round (only for groups that may hold earlier items) is rare.
        want = min(limit + 1, math.ceil(2 * (limit + 1) / len(groups_)) + 4)
        kind = "seen" if by_seen else "id"
        pending = groups_
        while True:
            budget = str(max(SCAN_BUDGET, 4 * want))
            calls = [
                (
                    [self._keys.catalogue_group(g.group)],
                    ["page", kind, *filters, end, str(want), budget, g.start, self._collation,
                     str(g.group), str(self._shards)],
                )
                for g in pending
            ]  # fmt: skip
            for g, reply in zip(pending, await self._run(calls), strict=True):
                _receive(g, reply)
            merged = sorted((item for g in groups_ for item in g.items), reverse=by_seen)
            # The page may only end where no group that is still open could hold an earlier item.
            frontiers = [g.frontier for g in groups_ if not g.exhausted]
            if frontiers:
                bound = max(frontiers) if by_seen else min(frontiers)
                final = [item for item in merged if (item >= bound if by_seen else item <= bound)]
            else:
                final = merged
            if len(final) > limit or not frontiers:
                break
            cutoff = merged[limit] if len(merged) > limit else None
            pending = [
                g
                for g in groups_
                if not g.exhausted
                and (cutoff is None or (g.frontier > cutoff if by_seen else g.frontier < cutoff))
            ]
            for g in pending:
                g.start = b"(" + g.frontier
            want = min(limit + 1, 2 * want)
        page = [member.decode("ascii") for member in final[:limit]]
        stamps = await self._stamps(page, by_seen)
        # A sensor whose last history expired between the two calls has no types left: it has
        # left the catalogue, so it is left out (the page is one item short).
        items = [
            CatalogueItem(_sensor_id(member, by_seen), found)
            for member, found in zip(page, stamps, strict=True)
            if found
        ]
        next_cursor = encode_catalogue_cursor(order, page[-1]) if len(final) > limit else None
        return CataloguePage(items, next_cursor)

    async def _stamps(self, members: list[str], by_seen: bool) -> list[dict[str, int]]:
        """Each sensor's types and their newest reading times: one call per group."""
        by_group: dict[int, list[int]] = {}
        ids = [_sensor_id(member, by_seen) for member in members]
        for index, sensor_id in enumerate(ids):
            by_group.setdefault(shard_of(sensor_id, self._shards) % CATALOGUE_GROUPS, []).append(
                index
            )
        calls: list[tuple[list[str], list[Any]]] = []
        for group, indices in by_group.items():
            pairs: list[str] = []
            for index in indices:
                pairs += (str(shard_of(ids[index], self._shards)), ids[index])
            calls.append(([self._keys.catalogue_group(group)], ["stamps", *pairs]))
        found: list[dict[str, int]] = [{} for _ in members]
        for indices, reply in zip(by_group.values(), await self._run(calls), strict=True):
            for index, stamps in zip(indices, reply, strict=True):
                times = [
                    (_text(stamps[i]), int(float(_text(stamps[i + 1]))))
                    for i in range(0, len(stamps), 2)
                ]
                found[index] = dict(sorted(times))
        return found

    async def latest_raw(self, items: Sequence[CatalogueItem]) -> list[dict[str, bytes]]:
        """The stored latest reading JSON of each item's types, in one pipeline of ``GET``s (a
        cluster pipeline refuses ``MGET``; each key goes to its sensor's node); a type whose
        latest key is gone is left out."""
        if not items:
            return []
        with redis_errors_translated():
            pipe = self._client.pipeline(transaction=False)
            for item in items:
                for sensor_type in item.types:
                    pipe.get(self._keys.latest(item.sensor_id, sensor_type))
            replies: list[Any] = await pipe.execute()
        found = []
        position = 0
        for item in items:
            raws = replies[position : position + len(item.types)]
            position += len(item.types)
            found.append(
                {
                    sensor_type: raw.encode() if isinstance(raw, str) else raw
                    for sensor_type, raw in zip(item.types, raws, strict=True)
                    if raw is not None
                }
            )
        return found

    def _filter_args(self, where: CatalogueFilter) -> list[str]:
        """prefix, type, seen_min ms, seen_max ms for the script ('' where absent), checked."""
        prefix = where.prefix
        if not isinstance(prefix, str) or not ID_PREFIX_RE.fullmatch(prefix):
            raise InvalidArgument(
                f"prefix {shown(prefix)} must be at most 64 letters, digits, '_', '-' or '.'"
            )
        sensor_type = where.sensor_type
        if sensor_type is not None and sensor_type not in self._catalogue:
            raise UnknownSensorType(sensor_type, list(self._catalogue))
        low = None if where.seen_after is None else _ms(where.seen_after, "seen_after", ceil=True)
        high = None if where.seen_before is None else _ms(where.seen_before, "seen_before")
        if low is not None and high is not None and low > high:
            raise InvalidArgument("seen_after is after seen_before")
        return [
            prefix,
            sensor_type or "",
            "" if low is None else str(low),
            "" if high is None else str(high),
        ]

    async def _run(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        return await run_scripts_async(self._client, self._source, self._sha, calls)


def seen_member(ms: int, sensor_id: str) -> str:
    """A sensor's member in the last-seen order (as the script writes it)."""
    return f"{ms + _OFFSET:0{_SEEN_DIGITS}d}:{sensor_id}"


def _bounds(
    prefix: str, filters: list[str], after: str | None, by_seen: bool
) -> tuple[bytes | None, bytes]:
    """The lex range each shard scans, in the order's direction: (start, end); start None when
    the range is empty (a cursor past the prefix's ids)."""
    if by_seen:
        # Descending: start at the newest allowed, end at the oldest.
        low, high = filters[2], filters[3]
        start = b"+" if not high else b"(" + seen_member(int(high) + 1, "").encode()[:-1]
        if after is not None and (start == b"+" or after.encode() < start[1:]):
            start = b"(" + after.encode()
        end = b"[" + seen_member(int(low), "").encode()[:-1] if low else b"-"
        return start, end
    start = b"[" + prefix.encode() if prefix else b"-"
    end = b"(" + prefix.encode() + b"\xff" if prefix else b"+"
    if after is not None:
        if prefix and not after.startswith(prefix) and after > prefix:
            return None, end  # past every id with the prefix
        if not prefix or after >= prefix:
            start = b"(" + after.encode()
    return start, end


def _receive(group: _Group, reply: Any) -> None:
    """Take a group's answer: its next matches in order, and how far they are complete."""
    if not isinstance(reply, list) or not reply:
        raise StorageError(f"unexpected reply from the catalogue script: {reply!r:.200}")
    group.exhausted = reply[0] == 0
    if not group.exhausted:
        group.frontier = _raw(reply[0])
    group.items += [_raw(member) for member in reply[1:]]


def _sensor_id(member: str, by_seen: bool) -> str:
    return member[_SEEN_DIGITS + 1 :] if by_seen else member


def _raw(value: Any) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _ms(moment: datetime, name: str, *, ceil: bool = False) -> int:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidArgument(f"{name} must be a datetime with a time zone, got {moment!r}")
    return to_epoch_ms_ceil(moment) if ceil else to_epoch_ms(moment)

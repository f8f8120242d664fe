"""Driving history scans against Redis: one page, or a whole range in bounded chunks.

A page (:meth:`ReadingReader.history`) gathers ``limit + 1`` rows of every type and keeps
``limit`` of the merge. Paging through a whole range that way reads each row about once per type
asked for (with ten types, ten times), because every page starts the scans over. An export keeps
one scan per type open instead (:func:`merged_chunks`): each bucket is fetched once, and at most
about one chunk of rows per type is held at any time, however long the range.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.client import NEVER_DECODE

from ev_storage.errors import redis_errors_translated
from ev_storage.history import HistoryScan, Row

# redis-py's per-command option to return a reply's bulk strings as bytes.
RAW_REPLIES: dict[str, Any] = {NEVER_DECODE: True}


async def run_scans(client: Any, scans: Sequence[HistoryScan]) -> None:
    """Send the rounds of every scan not yet done, pipelined together, until all are done."""
    while pending := [scan for scan in scans if not scan.done]:
        rounds = [scan.commands() for scan in pending]
        with redis_errors_translated():
            pipe = client.pipeline(transaction=False)
            for command in itertools.chain.from_iterable(rounds):
                # Buckets are binary: never decoded, even by a decode_responses client.
                pipe.execute_command(*command, **RAW_REPLIES)
            replies: list[Any] = await pipe.execute()
        for scan, commands in zip(pending, rounds, strict=True):
            scan.receive(replies[: len(commands)])
            del replies[: len(commands)]


async def merged_chunks(client: Any, scans: Sequence[HistoryScan]) -> AsyncIterator[list[Row]]:
    """Every row of the scans' ranges, in (ms, type) order, a chunk at a time.

    Each scan's ``want`` sets the chunk: a type's rows are fetched ``want`` (and the rest of the
    last bucket) at a time, when the previous ones have all been yielded. A row is yielded once
    no type that still has rows to fetch can produce one before it, so the chunks concatenate to
    exactly the merge of the ranges. Stopping the iteration (``aclose``, a cancelled task)
    stops the reads; errors are those of the reader (:class:`StorageUnavailable`, ...).
    """
    held: list[list[Row]] = [[] for _ in scans]
    while True:
        hungry = [index for index, rows in enumerate(held) if not rows]
        await run_scans(client, [scans[index] for index in hungry])
        for index in hungry:
            held[index] = scans[index].take()
        live = [index for index, rows in enumerate(held) if rows]
        if not live:
            return
        # A type that may still fetch rows bounds what is final: its next rows come after its
        # last held one. Types whose range is exhausted bound nothing.
        open_ends = [held[index][-1] for index in live if not scans[index].exhausted]
        parts: list[list[Row]] = []
        for index in live:
            rows = held[index]
            cut = bisect.bisect_right(rows, min(open_ends)) if open_ends else len(rows)
            parts.append(rows[:cut])
            held[index] = rows[cut:]
        yield list(heapq.merge(*parts))

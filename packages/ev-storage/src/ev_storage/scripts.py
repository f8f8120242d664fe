"""Lua script calls in one pipeline, for one server or a cluster: ``EVALSHA`` first, and on
NOSCRIPT (a new or restarted server, a node added or failed over) the script is loaded, on every
primary of a cluster, and only the calls that failed are sent again. (redis-py's cluster pipeline
refuses ``Script`` objects, hence this.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import exceptions as redis_errors

from ev_storage.clients import AsyncClient, SyncClient
from ev_storage.errors import redis_errors_translated

#: One script call: its keys and its arguments.
Call = tuple[list[str], Sequence[Any]]


def run_scripts(client: SyncClient, source: str, sha: str, calls: Sequence[Call]) -> list[Any]:
    """The replies of ``calls`` in order; an error reply is raised as a
    :class:`~ev_storage.StorageError`."""
    with redis_errors_translated():
        replies = _execute(_pipeline(client, sha, calls))
        missing = _no_script(replies)
        retried: list[Any] = []
        if missing:
            client.script_load(source)
            retried = _execute(_pipeline(client, sha, [calls[i] for i in missing]))
        _settle(replies, missing, retried)
        return replies


async def run_scripts_async(
    client: AsyncClient, source: str, sha: str, calls: Sequence[Call]
) -> list[Any]:
    """:func:`run_scripts` on an asynchronous client."""
    with redis_errors_translated():
        replies: list[Any] = await _pipeline(client, sha, calls).execute(raise_on_error=False)
        missing = _no_script(replies)
        retried: list[Any] = []
        if missing:
            await client.script_load(source)
            retry = _pipeline(client, sha, [calls[i] for i in missing])
            retried = await retry.execute(raise_on_error=False)
        _settle(replies, missing, retried)
        return replies


def _pipeline(client: Any, sha: str, calls: Sequence[Call]) -> Any:
    # Untyped: redis-py's pipeline annotations change between releases.
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
    return pipe


def _execute(pipe: Any) -> list[Any]:
    replies: list[Any] = pipe.execute(raise_on_error=False)
    return replies


def _no_script(replies: list[Any]) -> list[int]:
    return [i for i, reply in enumerate(replies) if isinstance(reply, redis_errors.NoScriptError)]


def _settle(replies: list[Any], missing: list[int], retried: list[Any]) -> None:
    """Put the retried replies in their places; raise the first error reply."""
    for i, reply in zip(missing, retried, strict=True):
        replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply

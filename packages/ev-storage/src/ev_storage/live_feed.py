"""A Redis pub/sub connection that yields what the write script publishes on the live channels.

The writer's script ``PUBLISH``es each newly stored reading on its sensor's live channel
(:meth:`KeyLayout.live_channel`). A :class:`LiveFeed` is one subscriber connection: channels are
subscribed and unsubscribed while it runs, and :meth:`LiveFeed.events` yields, in order, each
message and each confirmation of a subscription, of channels and of patterns (``PSUBSCRIBE``,
which the API's fleet-wide alarm socket uses).

Pub/sub delivers at most once: what is published while no connection is subscribed is lost. A
feed whose connection is lost raises :class:`~ev_storage.StorageUnavailable` and is done; the
caller opens a new one, subscribes again and re-reads what it may have missed. redis-py may also
reconnect and re-subscribe by itself within one feed: a channel then gets a second
:class:`LiveSubscribed`, which means the same (a gap is possible).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, NamedTuple, TypeAlias

from ev_storage.clients import PubSubClient
from ev_storage.errors import connection_errors_translated


class LiveMessage(NamedTuple):
    """A message published on a subscribed channel, its payload as published."""

    channel: str
    payload: bytes


class LiveSubscribed(NamedTuple):
    """Redis confirmed the subscription to ``channel``: nothing published from now on is missed."""

    channel: str


class LivePatternMessage(NamedTuple):
    """A message published on a channel that a subscribed ``pattern`` matches."""

    pattern: str
    channel: str
    payload: bytes


class LivePatternSubscribed(NamedTuple):
    """Redis confirmed the subscription to ``pattern`` (``PSUBSCRIBE``)."""

    pattern: str


LiveEvent: TypeAlias = LiveMessage | LiveSubscribed | LivePatternMessage | LivePatternSubscribed


class LiveFeed:
    """One pub/sub connection of ``client`` (see :data:`~ev_storage.PubSubClient`).

    Use it as ``async with LiveFeed(client) as feed``, which connects (or raises
    :class:`~ev_storage.StorageUnavailable`) and closes the connection at the end; the client
    itself stays open. Every redis-py error is translated into a :class:`~ev_storage.StorageError`.
    """

    def __init__(self, client: PubSubClient) -> None:
        self._pubsub = client.pubsub()

    async def __aenter__(self) -> LiveFeed:
        try:
            await self.connect()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Open the connection (before any subscription, so a Redis that is down shows now)."""
        with connection_errors_translated():
            await self._pubsub.connect()  # type: ignore[no-untyped-call]

    async def subscribe(self, *channels: str) -> None:
        """Send ``SUBSCRIBE``; each channel's :class:`LiveSubscribed` event confirms it."""
        with connection_errors_translated():
            await self._pubsub.subscribe(*channels)

    async def unsubscribe(self, *channels: str) -> None:
        """Send ``UNSUBSCRIBE``: nothing more arrives from ``channels`` once Redis has it."""
        with connection_errors_translated():
            await self._pubsub.unsubscribe(*channels)

    async def psubscribe(self, *patterns: str) -> None:
        """Send ``PSUBSCRIBE``; each pattern's :class:`LivePatternSubscribed` event confirms it.
        On a cluster, one node's subscription hears the ``PUBLISH`` of every node."""
        with connection_errors_translated():
            await self._pubsub.psubscribe(*patterns)

    async def punsubscribe(self, *patterns: str) -> None:
        """Send ``PUNSUBSCRIBE``: nothing more arrives through ``patterns`` once Redis has it."""
        with connection_errors_translated():
            await self._pubsub.punsubscribe(*patterns)

    async def events(self) -> AsyncIterator[LiveEvent]:
        """Messages and subscription confirmations as they arrive, until the connection is lost
        (:class:`~ev_storage.StorageUnavailable`). Waits without a timeout: a quiet channel is
        not a failure. Other replies (unsubscribe confirmations) are skipped."""
        while True:
            with connection_errors_translated():
                message = await self._pubsub.get_message(timeout=None)
            event = _event(message)
            if event is not None:
                yield event

    async def aclose(self) -> None:
        """Close the connection; the feed cannot be used again."""
        with connection_errors_translated():
            await self._pubsub.aclose()


def _event(message: dict[str, Any] | None) -> LiveEvent | None:
    if message is None:
        return None
    kind = message["type"]
    if kind == "message":
        return LiveMessage(_text(message["channel"]), _bytes(message["data"]))
    if kind == "subscribe":
        return LiveSubscribed(_text(message["channel"]))
    if kind == "pmessage":
        return LivePatternMessage(
            _text(message["pattern"]), _text(message["channel"]), _bytes(message["data"])
        )
    if kind == "psubscribe":
        return LivePatternSubscribed(_text(message["channel"]))
    return None


def _text(value: bytes | str) -> str:
    """A channel name, whether the client decodes replies or not."""
    return value if isinstance(value, str) else value.decode()


def _bytes(value: bytes | str) -> bytes:
    """A payload as published, whether the client decodes replies or not."""
    return value.encode() if isinstance(value, str) else value

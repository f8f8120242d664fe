"""The live fan-out: one Redis pub/sub connection per process, fanned out to WebSocket clients.

Each sensor's live channel is subscribed once, however many clients watch it (reference counted),
and every message is parsed once and put on each watcher's bounded queue. A watcher whose queue is
full is cut off (it gets :attr:`Signal.OVERFLOW`) instead of growing memory or slowing the others.

Pub/sub delivers at most once: messages published while the connection is down are lost. So when
a channel is subscribed again after a reconnect, its watchers get :attr:`Signal.RESYNC` and re-read
the latest values they may have missed. The connection itself is ev-storage's
:class:`~ev_storage.LiveFeed`; this module keeps the watchers, the reconnection and its backoff.

Alarm transitions come the same way: a sensor's alarm channel beside its live channel
(``subscribe(sensor_id, alarms=True)``), or every sensor's through one pattern subscription
(:meth:`LiveFanout.subscribe_alarms`), each parsed once into :class:`LiveAlarm`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

from ev_storage import (
    AlarmTransition,
    KeyLayout,
    LiveEvent,
    LiveFeed,
    LiveMessage,
    LivePatternMessage,
    PubSubClient,
    StorageError,
)

log = logging.getLogger(__name__)


class LiveUnavailable(Exception):
    """The fan-out could not subscribe in time: Redis pub/sub is unreachable."""


class Signal(enum.Enum):
    """What a watcher's queue carries besides readings."""

    OVERFLOW = "overflow"  # the watcher fell behind; it has been dropped
    RESYNC = "resync"  # the channel was re-subscribed; readings may have been missed
    CLOSED = "closed"  # the fan-out is shutting down


class LiveReading(NamedTuple):
    """A newly stored reading: its type (for filtering) and its canonical JSON, as published."""

    sensor_type: str
    text: str


class LiveAlarm(NamedTuple):
    """An alarm transition (for filtering) and its :class:`ev_schemas.AlarmEvent` JSON."""

    transition: AlarmTransition
    text: str


LiveItem = LiveReading | LiveAlarm | Signal


class Subscription:
    """One watcher (of a sensor, or of the fleet's alarms): a bounded queue of
    :class:`LiveReading`, :class:`LiveAlarm` and :class:`Signal`."""

    __slots__ = ("_closed", "_queue", "_resync_queued", "channel")

    def __init__(self, channel: str, queue_size: int) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[LiveItem] = asyncio.Queue(maxsize=queue_size)
        self._closed = False
        # A watcher of two channels is told of one reconnection once, not once per channel.
        self._resync_queued = False

    @property
    def ended(self) -> bool:
        """Whether delivery stopped (overflow or shutdown); the queue then holds the reason."""
        return self._closed

    async def get(self) -> LiveItem:
        """The next item; after a :class:`Signal` other than RESYNC nothing more comes."""
        item = await self._queue.get()
        if item is Signal.RESYNC:
            self._resync_queued = False
        return item

    def deliver(self, item: LiveReading | LiveAlarm) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.end(Signal.OVERFLOW)

    def notify(self, signal: Signal) -> None:
        """Queue ``signal``; a watcher must always learn why it was stopped, so make room."""
        if self._closed:
            return
        if signal is Signal.RESYNC:
            if self._resync_queued:
                return
            # A resync re-reads the latest values; a watcher with no room for it is behind anyway.
            try:
                self._queue.put_nowait(signal)
                self._resync_queued = True
            except asyncio.QueueFull:
                self.end(Signal.OVERFLOW)
        else:
            self.end(signal)

    def end(self, signal: Signal) -> None:
        """Stop delivery: drop what is queued (the watcher is going away) and queue ``signal``."""
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(signal)


class _Channel:
    """A channel or pattern subscribed for its watchers; ``alarms``: it carries alarm transitions
    (else readings)."""

    __slots__ = ("alarms", "pattern", "ready", "watchers")

    def __init__(self, *, pattern: bool = False, alarms: bool = False) -> None:
        self.pattern = pattern
        self.alarms = alarms
        self.watchers: set[Subscription] = set()
        # Set once Redis confirmed the subscription: only then may a watcher read its snapshot.
        self.ready = asyncio.Event()


class LiveFanout:
    """Shares one pub/sub connection among every WebSocket client of the process.

    ``channel_for`` maps a sensor id to its live channel; ``keys`` (the write script's layout)
    names the alarm channels, which cannot be watched without it; ``queue_size`` bounds each
    watcher's queue; ``subscribe_timeout`` bounds the wait for Redis to confirm a new
    subscription.
    """

    def __init__(
        self,
        client: PubSubClient,
        *,
        channel_for: Callable[[str], str],
        queue_size: int,
        keys: KeyLayout | None = None,
        subscribe_timeout: float = 5.0,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self._client = client
        self._channel_for = channel_for
        self._keys = keys
        self._queue_size = queue_size
        self._subscribe_timeout = subscribe_timeout
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._backoff = min_backoff
        self._channels: dict[str, _Channel] = {}
        # SUBSCRIBE commands sent and not yet confirmed, per channel, on the current connection.
        self._pending: Counter[str] = Counter()
        self._feed: LiveFeed | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the background reader; it connects (and reconnects) on its own."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ev-api-live-fanout")

    async def aclose(self) -> None:
        """Stop the reader, close the connection and tell every watcher the fan-out is gone."""
        task, self._task = self._task, None
        if task is not None:
            while not task.done():
                # Ask again until it ends: a cancellation that lands while redis-py is opening
                # its connection can be lost (seen under anyio on Python 3.11), leaving it reading.
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            if not task.cancelled() and task.exception() is not None:
                log.error("live fan-out reader ended with an error", exc_info=task.exception())
        for channel in self._channels.values():
            for watcher in channel.watchers:
                watcher.notify(Signal.CLOSED)
        self._channels.clear()

    @property
    def channel_count(self) -> int:
        """How many channels and patterns are subscribed (one per watched sensor and kind)."""
        return len(self._channels)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, sensor_id: str, *, alarms: bool = False
    ) -> AsyncIterator[Subscription]:
        """Watch a sensor's readings (and its alarm transitions too with ``alarms``); returns
        once Redis confirmed the subscriptions, so nothing published after this point is missed.
        Raises :class:`LiveUnavailable` if that takes too long."""
        targets = {self._channel_for(sensor_id): _Channel()}
        if alarms:
            targets[self._alarm_keys().alarm_channel(sensor_id)] = _Channel(alarms=True)
        async with self._watch(targets) as watcher:
            yield watcher

    @contextlib.asynccontextmanager
    async def subscribe_alarms(self) -> AsyncIterator[Subscription]:
        """Watch every sensor's alarm transitions (one pattern subscription, however many
        watchers); returns once Redis confirmed it, as :meth:`subscribe`."""
        pattern = self._alarm_keys().alarm_channel_pattern()
        async with self._watch({pattern: _Channel(pattern=True, alarms=True)}) as watcher:
            yield watcher

    def _alarm_keys(self) -> KeyLayout:
        if self._keys is None:
            raise RuntimeError("this fan-out was made without a key layout: no alarm channels")
        return self._keys

    @contextlib.asynccontextmanager
    async def _watch(self, targets: dict[str, _Channel]) -> AsyncIterator[Subscription]:
        """Add a watcher to each named channel (``targets``: a fresh one for each name, used if
        it is not subscribed yet) and wait until every one is confirmed."""
        watcher = Subscription(next(iter(targets)), self._queue_size)
        watched: dict[str, _Channel] = {}
        new: list[str] = []
        for name, fresh in targets.items():
            channel = self._channels.get(name)
            if channel is None:
                channel = self._channels[name] = fresh
                new.append(name)
            channel.watchers.add(watcher)
            watched[name] = channel
        try:
            if new:
                await self._send_subscribe(new)
            try:
                async with asyncio.timeout(self._subscribe_timeout):
                    for channel in watched.values():
                        await channel.ready.wait()
            except TimeoutError:
                raise LiveUnavailable(
                    f"Redis did not confirm the subscription to {', '.join(watched)} "
                    f"within {self._subscribe_timeout:g} s"
                ) from None
            yield watcher
        finally:
            gone = []
            for name, channel in watched.items():
                channel.watchers.discard(watcher)
                if not channel.watchers and self._channels.get(name) is channel:
                    del self._channels[name]
                    gone.append((name, channel.pattern))
            for name, pattern in gone:
                await self._send_unsubscribe(name, pattern=pattern)

    async def _send_subscribe(self, names: list[str]) -> None:
        feed = self._feed
        if feed is None:
            return  # the reader subscribes every channel when it (re)connects
        self._pending.update(names)
        patterns = [name for name in names if self._channels[name].pattern]
        channels = [name for name in names if not self._channels[name].pattern]
        try:
            if channels:
                await feed.subscribe(*channels)
            if patterns:
                await feed.psubscribe(*patterns)
        except StorageError as exc:
            # The reader sees the broken connection too and re-subscribes after reconnecting.
            log.debug("live fan-out: SUBSCRIBE failed: %s", exc)

    async def _send_unsubscribe(self, name: str, *, pattern: bool) -> None:
        feed = self._feed
        if feed is None:
            return
        try:
            if pattern:
                await feed.punsubscribe(name)
            else:
                await feed.unsubscribe(name)
        except StorageError as exc:
            log.debug("live fan-out: UNSUBSCRIBE failed: %s", exc)

    async def _run(self) -> None:
        """Read pub/sub forever; after a failure wait (doubling, capped) and start over."""
        while True:
            try:
                await self._serve()
            except StorageError as exc:
                log.warning("live fan-out: %s; reconnecting in %.1f s", exc, self._backoff)
            except Exception:
                # A bug must not silently end live updates for the whole process.
                log.exception("live fan-out failed; restarting in %.1f s", self._backoff)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self._max_backoff)

    async def _serve(self) -> None:
        async with LiveFeed(self._client) as feed:
            try:
                self._feed = feed
                self._pending.clear()
                if self._channels:
                    await self._send_subscribe(list(self._channels))
                self._backoff = self._min_backoff  # a good connection resets the backoff
                async for event in feed.events():
                    self._dispatch(event)
            finally:
                self._feed = None

    def _dispatch(self, event: LiveEvent) -> None:
        if isinstance(event, LiveMessage | LivePatternMessage):
            name = event.pattern if isinstance(event, LivePatternMessage) else event.channel
            channel = self._channels.get(name)
            if channel is not None and channel.watchers:
                item = (
                    self._parse_alarm(event.channel, event.payload)
                    if channel.alarms
                    else _parse(event.payload)
                )
                if item is not None:
                    for watcher in tuple(channel.watchers):
                        watcher.deliver(item)
        else:
            name = event[0]  # the channel, or the pattern
            self._on_subscribed(name, self._channels.get(name))

    def _parse_alarm(self, channel: str, payload: bytes) -> LiveAlarm | None:
        """The transition and its event JSON, worked out once per message."""
        sensor_id = self._alarm_keys().sensor_of_alarm_channel(channel)
        try:
            if sensor_id is None:
                raise ValueError(f"not an alarm channel: {channel!r}")
            transition = AlarmTransition.parse(sensor_id, payload)
            return LiveAlarm(transition, transition.event().model_dump_json())
        except (StorageError, ValueError) as exc:
            log.warning(
                "live fan-out: dropped a malformed alarm message %r: %s", payload[:100], exc
            )
            return None

    def _on_subscribed(self, name: str, channel: _Channel | None) -> None:
        if self._pending[name] > 0:
            self._pending[name] -= 1
            if self._pending[name] > 0:
                return  # an earlier SUBSCRIBE's confirmation; ours is still to come
            del self._pending[name]
        if channel is None:
            return
        if channel.ready.is_set():
            # Subscribed again after a reconnect (ours, or redis-py's own retry): a gap is possible.
            log.info("live fan-out: re-subscribed to %s", name)
            for watcher in tuple(channel.watchers):
                watcher.notify(Signal.RESYNC)
        else:
            channel.ready.set()


def _parse(payload: bytes) -> LiveReading | None:
    """The reading's type and text, worked out once per message rather than once per watcher."""
    try:
        text = payload.decode()
        sensor_type = json.loads(text)["sensor_type"]
    except (ValueError, TypeError, KeyError):
        log.warning("live fan-out: dropped a malformed live message %r", payload[:100])
        return None
    if not isinstance(sensor_type, str):
        log.warning("live fan-out: dropped a live message without a sensor type %r", payload[:100])
        return None
    return LiveReading(sensor_type, text)

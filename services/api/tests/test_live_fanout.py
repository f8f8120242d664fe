"""The live fan-out on the real Redis: shared subscriptions, slow watchers, reconnection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio
from _api_helpers import reading
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ev_api.live_fanout import (
    LiveAlarm,
    LiveFanout,
    LiveItem,
    LiveReading,
    LiveUnavailable,
    Signal,
    Subscription,
)
from ev_storage import KeyLayout

pytestmark = pytest.mark.anyio

SENSOR = "ev_001"


async def eventually(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``condition`` (sync or async) until truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def next_item(subscription: Subscription, timeout: float = 5.0) -> LiveItem:
    async with asyncio.timeout(timeout):
        return await subscription.get()


@pytest.fixture
def keys(key_prefix: str) -> KeyLayout:
    return KeyLayout(key_prefix)


@pytest.fixture
async def publisher(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def running_fanout(
    client: redis.asyncio.Redis, keys: KeyLayout, **options: Any
) -> AsyncIterator[LiveFanout]:
    fanout = LiveFanout(
        client, channel_for=keys.live_channel, **{"queue_size": 16, "keys": keys, **options}
    )
    await fanout.start()
    try:
        yield fanout
    finally:
        await fanout.aclose()
        await client.aclose()


def fast_client(url: str, **options: Any) -> redis.asyncio.Redis:
    # No retries inside redis-py: the fan-out's own reconnect loop is what is under test.
    return redis.asyncio.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **options)


async def numsub(client: redis.asyncio.Redis, channel: str) -> int:
    [(_, count)] = await client.pubsub_numsub(channel)
    return int(count)


def payload(seconds: int, sensor_type: str = "battery") -> bytes:
    return reading(sensor_type, seconds).to_json()


async def test_subscribed_on_return_and_fanned_out_once_per_channel(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    channel = keys.live_channel(SENSOR)
    async with running_fanout(redis.asyncio.Redis.from_url(redis_url), keys) as fanout:
        async with fanout.subscribe(SENSOR) as first, fanout.subscribe(SENSOR) as second:
            # Confirmed by Redis before subscribe() returned: nothing published now is missed.
            assert await numsub(publisher, channel) == 1
            assert fanout.channel_count == 1
            await publisher.publish(channel, payload(1))
            expected = LiveReading("battery", payload(1).decode())
            assert await next_item(first) == expected
            assert await next_item(second) == expected
        assert fanout.channel_count == 0
        await eventually(lambda: _zero(publisher, channel))


async def _zero(client: redis.asyncio.Redis, channel: str) -> bool:
    return await numsub(client, channel) == 0


async def test_last_watcher_leaving_unsubscribes(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    channel = keys.live_channel(SENSOR)
    async with running_fanout(redis.asyncio.Redis.from_url(redis_url), keys) as fanout:
        async with fanout.subscribe(SENSOR):
            async with fanout.subscribe(SENSOR):
                pass
            assert fanout.channel_count == 1
            assert await numsub(publisher, channel) == 1
        assert fanout.channel_count == 0
        await eventually(lambda: _zero(publisher, channel))
        # and a new watcher subscribes afresh
        async with fanout.subscribe(SENSOR) as again:
            await publisher.publish(channel, payload(2))
            assert await next_item(again) == LiveReading("battery", payload(2).decode())


async def test_only_the_sensors_own_channel(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    async with (
        running_fanout(redis.asyncio.Redis.from_url(redis_url), keys) as fanout,
        fanout.subscribe(SENSOR) as watcher,
    ):
        await publisher.publish(keys.live_channel("ev_002"), payload(1))
        await publisher.publish(keys.live_channel(SENSOR), payload(2))
        assert await next_item(watcher) == LiveReading("battery", payload(2).decode())


async def test_malformed_messages_are_dropped(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    channel = keys.live_channel(SENSOR)
    async with (
        running_fanout(redis.asyncio.Redis.from_url(redis_url), keys) as fanout,
        fanout.subscribe(SENSOR) as watcher,
    ):
        for junk in (b"not json", b"[1, 2]", b'{"sensor_type": 5}', b"\xff"):
            await publisher.publish(channel, junk)
        await publisher.publish(channel, payload(3))
        assert await next_item(watcher) == LiveReading("battery", payload(3).decode())


async def test_a_slow_watcher_is_dropped_without_slowing_others(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    channel = keys.live_channel(SENSOR)
    async with (
        running_fanout(redis.asyncio.Redis.from_url(redis_url), keys, queue_size=2) as fanout,
        fanout.subscribe(SENSOR) as slow,
        fanout.subscribe(SENSOR) as fast,
    ):
        received: list[LiveReading | Signal] = []
        for second in range(4):
            await publisher.publish(channel, payload(second))
            received.append(await next_item(fast))
        await eventually(lambda: slow.ended)
        # What was queued is dropped: the slow watcher learns at once why it is cut off.
        assert await next_item(slow) is Signal.OVERFLOW
        assert received == [LiveReading("battery", payload(s).decode()) for s in range(4)]
        assert not fast.ended


async def test_closing_the_fanout_tells_watchers(redis_url: str, keys: KeyLayout) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    fanout = LiveFanout(client, channel_for=keys.live_channel, queue_size=4)
    await fanout.start()
    try:
        async with fanout.subscribe(SENSOR) as watcher:
            await fanout.aclose()
            assert await next_item(watcher) is Signal.CLOSED
    finally:
        await fanout.aclose()
        await client.aclose()


async def test_subscribe_fails_when_redis_is_unreachable(keys: KeyLayout, closed_port: int) -> None:
    client = fast_client(f"redis://127.0.0.1:{closed_port}/0", socket_connect_timeout=0.5)
    async with running_fanout(client, keys, subscribe_timeout=0.3) as fanout:
        with pytest.raises(LiveUnavailable, match="did not confirm"):
            async with fanout.subscribe(SENSOR):
                pass
        assert fanout.channel_count == 0


async def test_resyncs_after_its_connection_is_killed(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    name = f"evtest-fanout-{uuid.uuid4().hex[:8]}"
    client = redis.asyncio.Redis.from_url(redis_url, client_name=name)
    channel = keys.live_channel(SENSOR)
    async with (
        running_fanout(client, keys, min_backoff=0.01, max_backoff=0.05) as fanout,
        fanout.subscribe(SENSOR) as watcher,
    ):
        [fanout_connection] = [
            c for c in await publisher.client_list(_type="pubsub") if c["name"] == name
        ]
        await publisher.client_kill_filter(_id=fanout_connection["id"])
        assert await next_item(watcher) is Signal.RESYNC
        await publisher.publish(channel, payload(9))
        assert await next_item(watcher) == LiveReading("battery", payload(9).decode())


class _Proxy:
    """A TCP relay to Redis that can be cut and restored, to take Redis "down" for one client."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers -= {writer, upstream_writer}


async def test_reconnects_with_backoff_when_redis_comes_back(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    target = publisher.connection_pool.connection_kwargs
    proxy = _Proxy((target.get("host", "127.0.0.1"), target.get("port", 6379)))
    await proxy.start()
    client = fast_client(f"redis://127.0.0.1:{proxy.port}/0", socket_connect_timeout=0.5)
    channel = keys.live_channel(SENSOR)
    try:
        async with (
            running_fanout(client, keys, min_backoff=0.02, max_backoff=0.1) as fanout,
            fanout.subscribe(SENSOR) as watcher,
        ):
            await proxy.stop()  # Redis "goes away": reconnect attempts are refused
            await eventually(lambda: _zero(publisher, channel))
            await publisher.publish(channel, payload(1))  # lost: nobody is subscribed
            await proxy.start()  # same port: the fanout's next attempt gets through
            assert await next_item(watcher) is Signal.RESYNC
            await publisher.publish(channel, payload(2))
            assert await next_item(watcher) == LiveReading("battery", payload(2).decode())
    finally:
        await proxy.stop()


async def test_fleet_alarm_watchers_share_one_pattern_and_get_parsed_events(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    async with running_fanout(fast_client(redis_url), keys) as fanout:
        async with fanout.subscribe_alarms() as first, fanout.subscribe_alarms() as second:
            assert fanout.channel_count == 1
            await publisher.publish(keys.alarm_channel("ev_9"), b"raised|speed|fast|1|2||info|3|3|")
            await publisher.publish(keys.alarm_channel("ev_9"), b"not a transition")
            await publisher.publish(keys.alarm_channel("ev_9"), b"retracted|speed|fast|1|2||info|4")
            for watcher in (first, second):
                item = await next_item(watcher)
                assert isinstance(item, LiveAlarm)
                assert (item.transition.sensor_id, item.transition.kind) == ("ev_9", "raised")
                assert json.loads(item.text)["alarm"]["alarm_id"] == "ev_9~speed~fast~1"
                item = await next_item(watcher)  # the malformed message was dropped
                assert isinstance(item, LiveAlarm)
                assert item.transition.kind == "retracted"
        assert fanout.channel_count == 0


async def test_a_sensor_watcher_with_alarms_hears_both_channels(
    redis_url: str, keys: KeyLayout, publisher: redis.asyncio.Redis
) -> None:
    async with running_fanout(fast_client(redis_url), keys) as fanout:
        async with fanout.subscribe(SENSOR, alarms=True) as watcher:
            assert fanout.channel_count == 2
            await publisher.publish(keys.alarm_channel(SENSOR), b"cleared|speed|f|1|2|5|info|6|3|6")
            await publisher.publish(keys.live_channel(SENSOR), reading("speed").to_json())
            alarm, live = await next_item(watcher), await next_item(watcher)
            assert isinstance(alarm, LiveAlarm)
            assert alarm.transition.cleared_at_ms == 6
            assert isinstance(live, LiveReading)
        assert fanout.channel_count == 0

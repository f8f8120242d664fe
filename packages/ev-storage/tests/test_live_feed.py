"""The live feed against the real Redis: subscriptions, messages as published, lost connections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
from _storage_helpers import SENSOR, make_reading
from redis.backoff import NoBackoff

from ev_storage import (
    KeyLayout,
    LiveEvent,
    LiveFeed,
    LiveMessage,
    LivePatternMessage,
    LivePatternSubscribed,
    LiveSubscribed,
    ReadingWriter,
    StorageSettings,
    StorageUnavailable,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def pubsub_client(url: str, *, retries: int = 0, **options: Any) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        url, retry=redis.asyncio.retry.Retry(NoBackoff(), retries), **options
    )


async def next_event(events: AsyncIterator[LiveEvent], timeout: float = 5.0) -> LiveEvent:
    async with asyncio.timeout(timeout):
        return await anext(events)


@pytest.fixture
def keys(settings: StorageSettings) -> KeyLayout:
    return KeyLayout(settings.key_prefix)


async def test_yields_the_confirmation_then_what_the_writer_publishes(
    redis_url: str, keys: KeyLayout, writer: ReadingWriter
) -> None:
    channel = keys.live_channel(SENSOR)
    client = pubsub_client(redis_url)
    try:
        async with LiveFeed(client) as feed:
            events = feed.events()
            await feed.subscribe(channel)
            assert await next_event(events) == LiveSubscribed(channel)
            reading = make_reading(0, 85.5)
            writer.store(reading)
            assert await next_event(events) == LiveMessage(channel, reading.to_json())
    finally:
        await client.aclose()


async def test_only_subscribed_channels_until_unsubscribed(
    redis_url: str, keys: KeyLayout, async_client: redis.asyncio.Redis
) -> None:
    first, second = keys.live_channel("ev_001"), keys.live_channel("ev_002")
    client = pubsub_client(redis_url)
    try:
        async with LiveFeed(client) as feed:
            events = feed.events()
            await feed.subscribe(first, second)
            confirmed = {await next_event(events), await next_event(events)}
            assert confirmed == {LiveSubscribed(first), LiveSubscribed(second)}
            await async_client.publish(keys.live_channel("ev_003"), b"elsewhere")
            await async_client.publish(first, b"one")
            assert await next_event(events) == LiveMessage(first, b"one")
            await feed.unsubscribe(first)
            await async_client.publish(first, b"gone")
            await async_client.publish(second, b"two")
            # The unsubscribe confirmation and the message on ``first`` are not yielded.
            assert await next_event(events) == LiveMessage(second, b"two")
    finally:
        await client.aclose()


async def test_a_decoding_client_yields_the_same(
    redis_url: str, keys: KeyLayout, async_client: redis.asyncio.Redis
) -> None:
    channel = keys.live_channel(SENSOR)
    client = pubsub_client(redis_url, decode_responses=True)
    try:
        async with LiveFeed(client) as feed:
            events = feed.events()
            await feed.subscribe(channel)
            assert await next_event(events) == LiveSubscribed(channel)
            await async_client.publish(channel, "é".encode())
            assert await next_event(events) == LiveMessage(channel, "é".encode())
    finally:
        await client.aclose()


async def test_redis_down_is_storage_unavailable_on_entry(
    unreachable_async_client: redis.asyncio.Redis,
) -> None:
    with pytest.raises(StorageUnavailable) as caught:
        async with LiveFeed(unreachable_async_client):
            pass
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


async def _kill(admin: redis.asyncio.Redis, name: str) -> None:
    [connection] = [c for c in await admin.client_list(_type="pubsub") if c["name"] == name]
    await admin.client_kill_filter(_id=connection["id"])


async def test_a_lost_connection_ends_the_events_with_storage_unavailable(
    redis_url: str, keys: KeyLayout, async_client: redis.asyncio.Redis
) -> None:
    name = f"evtest-feed-{uuid.uuid4().hex[:8]}"
    client = pubsub_client(redis_url, client_name=name)
    try:
        async with LiveFeed(client) as feed:
            events = feed.events()
            await feed.subscribe(keys.live_channel(SENSOR))
            assert isinstance(await next_event(events), LiveSubscribed)
            await _kill(async_client, name)
            with pytest.raises(StorageUnavailable):
                await next_event(events)
    finally:
        await client.aclose()


async def test_a_client_that_retries_confirms_the_subscription_again(
    redis_url: str, keys: KeyLayout, async_client: redis.asyncio.Redis
) -> None:
    """redis-py reconnects and re-subscribes by itself: the second confirmation tells of a gap."""
    name = f"evtest-feed-{uuid.uuid4().hex[:8]}"
    channel = keys.live_channel(SENSOR)
    client = pubsub_client(redis_url, retries=1, client_name=name)
    try:
        async with LiveFeed(client) as feed:
            events = feed.events()
            await feed.subscribe(channel)
            assert await next_event(events) == LiveSubscribed(channel)
            await _kill(async_client, name)
            assert await next_event(events) == LiveSubscribed(channel)
            await async_client.publish(channel, b"after")
            assert await next_event(events) == LiveMessage(channel, b"after")
    finally:
        await client.aclose()


async def test_a_pattern_yields_every_sensors_alarms_with_its_channel(
    redis_url: str, keys: KeyLayout, async_client: redis.asyncio.Redis
) -> None:
    pattern = keys.alarm_channel_pattern()
    client = pubsub_client(redis_url)
    try:
        async with LiveFeed(client) as feed:
            events = feed.events()
            await feed.psubscribe(pattern)
            assert await next_event(events) == LivePatternSubscribed(pattern)
            await async_client.publish(keys.live_channel("ev_001"), b"a reading")  # not matched
            await async_client.publish(KeyLayout("other:").alarm_channel("ev_001"), b"elsewhere")
            await async_client.publish(keys.alarm_channel("ev_002"), b"one")
            assert await next_event(events) == LivePatternMessage(
                pattern, keys.alarm_channel("ev_002"), b"one"
            )
            await feed.punsubscribe(pattern)
            await async_client.publish(keys.alarm_channel("ev_002"), b"gone")
            await feed.subscribe(keys.live_channel("ev_003"))
            assert await next_event(events) == LiveSubscribed(keys.live_channel("ev_003"))
    finally:
        await client.aclose()

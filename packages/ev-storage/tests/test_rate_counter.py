"""Fixed-window counters against the real Redis: counting, the window's expiry, errors."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio
import redis.asyncio.retry
from redis.backoff import NoBackoff

from ev_storage import (
    InvalidArgument,
    InvalidKey,
    KeyLayout,
    RateCounter,
    StorageError,
    StorageTimedOut,
    StorageUnavailable,
    WindowCount,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CLIENT = hashlib.sha256(b"key:secret-key").hexdigest()[:32]
OTHER = hashlib.sha256(b"addr:127.0.0.1").hexdigest()[:32]


@pytest.fixture
def keys(key_prefix: str) -> KeyLayout:
    return KeyLayout(key_prefix)


async def test_counts_hits_per_client_in_one_window(
    async_client: redis.asyncio.Redis, keys: KeyLayout, redis_client: redis.Redis
) -> None:
    counter = RateCounter(async_client, keys)
    first = await counter.hit(CLIENT)
    assert first.hits == 1
    assert 59_000 < first.ms_left <= 60_000
    assert [(await counter.hit(CLIENT)).hits for _ in range(2)] == [2, 3]
    assert (await counter.hit(OTHER)).hits == 1
    # The key the API's limiter always used, with the window as its expiry.
    key = keys.rate_counter(CLIENT)
    assert key == f"{keys.prefix}ratelimit:{CLIENT}"
    assert redis_client.get(key) == b"3"
    assert 0 < redis_client.pttl(key) <= 60_000


async def test_a_new_window_starts_from_zero(
    async_client: redis.asyncio.Redis, keys: KeyLayout
) -> None:
    counter = RateCounter(async_client, keys, window_ms=50)
    assert await counter.hit(CLIENT) == WindowCount(1, 50)
    assert (await counter.hit(CLIENT)).hits == 2
    await asyncio.sleep(0.12)
    assert (await counter.hit(CLIENT)).hits == 1


async def test_a_counter_without_expiry_gets_one(
    async_client: redis.asyncio.Redis, keys: KeyLayout, redis_client: redis.Redis
) -> None:
    redis_client.set(keys.rate_counter(CLIENT), 7)  # no TTL: it would count for ever
    counted = await RateCounter(async_client, keys, window_ms=5_000).hit(CLIENT)
    assert counted == WindowCount(8, 5_000)
    assert 0 < redis_client.pttl(keys.rate_counter(CLIENT)) <= 5_000


async def test_refuses_a_client_id_that_is_not_a_hash(
    async_client: redis.asyncio.Redis, keys: KeyLayout
) -> None:
    with pytest.raises(InvalidKey):
        await RateCounter(async_client, keys).hit("key:secret-key")


async def test_refuses_an_empty_window(async_client: redis.asyncio.Redis) -> None:
    with pytest.raises(InvalidArgument, match="window_ms"):
        RateCounter(async_client, KeyLayout(), window_ms=0)


async def test_redis_down_is_storage_unavailable(
    unreachable_async_client: redis.asyncio.Redis,
) -> None:
    counter = RateCounter(unreachable_async_client, KeyLayout("p:"))
    with pytest.raises(StorageUnavailable) as caught:
        await counter.hit(CLIENT)
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


async def test_a_wrong_kind_of_key_is_a_storage_error(
    async_client: redis.asyncio.Redis, keys: KeyLayout, redis_client: redis.Redis
) -> None:
    redis_client.hset(keys.rate_counter(CLIENT), "x", "1")  # not a counter: INCR fails
    with pytest.raises(StorageError, match="WRONGTYPE") as caught:
        await RateCounter(async_client, keys).hit(CLIENT)
    assert not isinstance(caught.value, StorageUnavailable)


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a hung Redis."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_a_hung_redis_is_storage_timed_out(silent_port: int) -> None:
    no_retries = redis.asyncio.retry.Retry(NoBackoff(), 0)
    client = redis.asyncio.Redis(port=silent_port, socket_timeout=0.2, retry=no_retries)
    try:
        with pytest.raises(StorageTimedOut) as caught:
            await RateCounter(client, KeyLayout("p:")).hit(CLIENT)
        assert isinstance(caught.value.__cause__, redis.TimeoutError)
    finally:
        await client.aclose()

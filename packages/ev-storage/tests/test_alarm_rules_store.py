"""The stored alarm rule set against the real Redis: absent, round trip, replace, corrupt."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio

from ev_schemas import ALARM_RULES_EXAMPLE, AlarmRuleSet, default_catalogue
from ev_storage import (
    AlarmRulesStore,
    CorruptRecord,
    KeyLayout,
    StorageUnavailable,
    read_stored_rules,
)

pytestmark = pytest.mark.anyio

EXAMPLE = AlarmRuleSet.checked(ALARM_RULES_EXAMPLE, default_catalogue())


def test_the_key_has_its_own_hash_tag() -> None:
    assert KeyLayout("p:").alarm_rules() == "p:{alarm-rules}"


async def test_nothing_stored_is_none(
    async_client: redis.asyncio.Redis, redis_client: redis.Redis, key_prefix: str
) -> None:
    assert await AlarmRulesStore(async_client, KeyLayout(key_prefix)).get() is None
    assert read_stored_rules(redis_client, KeyLayout(key_prefix)) is None


async def test_a_put_replaces_the_whole_set(
    async_client: redis.asyncio.Redis, redis_client: redis.Redis, key_prefix: str
) -> None:
    store = AlarmRulesStore(async_client, KeyLayout(key_prefix))
    assert await store.put(EXAMPLE) == EXAMPLE
    stored = await store.get()
    assert stored == EXAMPLE
    assert stored is not None
    assert stored.version == EXAMPLE.version
    assert redis_client.get(f"{key_prefix}{{alarm-rules}}") == EXAMPLE.canonical_json().encode()
    smaller = EXAMPLE.model_copy(update={"rules": EXAMPLE.rules[:1]})
    await store.put(smaller)
    assert await store.get() == smaller
    assert read_stored_rules(redis_client, KeyLayout(key_prefix)) == smaller
    await store.put(AlarmRuleSet())
    assert await store.get() == AlarmRuleSet()


@pytest.mark.parametrize("raw", [b"not json", b'{"rules": [{"id": "x"}]}', b"[]"])
async def test_a_corrupt_record_names_its_key(
    async_client: redis.asyncio.Redis, redis_client: redis.Redis, key_prefix: str, raw: bytes
) -> None:
    key = KeyLayout(key_prefix).alarm_rules()
    redis_client.set(key, raw)
    with pytest.raises(CorruptRecord, match=r"\{alarm-rules\}: not a valid alarm rule set"):
        await AlarmRulesStore(async_client, KeyLayout(key_prefix)).get()
    with pytest.raises(CorruptRecord):
        read_stored_rules(redis_client, KeyLayout(key_prefix))


async def test_redis_down_is_unavailable(
    unreachable_async_client: redis.asyncio.Redis, unreachable_client: redis.Redis
) -> None:
    with pytest.raises(StorageUnavailable):
        await AlarmRulesStore(unreachable_async_client, KeyLayout()).get()
    with pytest.raises(StorageUnavailable):
        await AlarmRulesStore(unreachable_async_client, KeyLayout()).put(EXAMPLE)
    with pytest.raises(StorageUnavailable):
        read_stored_rules(unreachable_client, KeyLayout())

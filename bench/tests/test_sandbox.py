from __future__ import annotations

import pytest
import redis

from ev_bench.errors import BenchError
from ev_bench.sandbox import delete_keys

pytestmark = pytest.mark.integration


def test_delete_keys_removes_only_the_prefix(redis_url: str, key_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        inside = [f"{key_prefix}run:{n}" for n in range(1234)]
        outside = f"{key_prefix[:-1]}-other:key"  # shares the start, not the prefix
        client.mset(dict.fromkeys(inside, b"x") | {outside: b"y"})
        assert delete_keys(client, f"{key_prefix}run:") == len(inside)
        assert client.exists(*inside) == 0
        assert client.get(outside) == b"y"
        client.delete(outside)
    finally:
        client.close()


def test_delete_keys_refuses_an_empty_prefix(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        with pytest.raises(BenchError, match="without a prefix"):
            delete_keys(client, "")
    finally:
        client.close()

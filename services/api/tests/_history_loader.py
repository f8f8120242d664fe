"""Many readings straight into a history hash in ev-storage's documented layout (docs/storage.md),
for tests that need more rows than the write script stores in a test's time."""

from __future__ import annotations

from collections import defaultdict

import redis

from ev_storage import KeyLayout
from ev_storage.history import META_FIELD, RECORD

BUCKET_MS = 120_000  # StorageSettings' default history_bucket


def load_history(
    client: redis.Redis,
    prefix: str,
    sensor_id: str,
    sensor_type: str,
    *,
    start_ms: int,
    count: int,
    interval_ms: int = 1000,
) -> None:
    """``count`` readings every ``interval_ms`` from ``start_ms``; the i-th is ``i % 100``."""
    buckets: dict[int, bytearray] = defaultdict(bytearray)
    for i in range(count):
        number, offset = divmod(start_ms + i * interval_ms, BUCKET_MS)
        buckets[number] += RECORD.pack(offset, float(i % 100))
    newest = start_ms + (count - 1) * interval_ms
    key = KeyLayout(prefix).history(sensor_id, sensor_type)
    pipe = client.pipeline(transaction=False)
    pipe.hset(key, META_FIELD, f"{BUCKET_MS}:{newest}:{min(buckets)}")
    for number, data in buckets.items():
        pipe.hset(key, str(number), bytes(data))
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()

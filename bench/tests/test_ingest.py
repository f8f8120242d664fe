from __future__ import annotations

import pytest
import redis

from ev_bench.backlog import fleet_messages, sensor_ids_of
from ev_bench.ingest import IngestFigures, StoredCounter
from ev_schemas import ReadingValidator
from ev_storage import ReadingWriter, StorageSettings


@pytest.mark.integration
def test_stored_counter_counts_distinct_readings(redis_url: str, key_prefix: str) -> None:
    messages = fleet_messages(300, vehicles=3, seed=1, id_prefix="t_")
    validator = ReadingValidator()
    readings = [validator.parse(body) for _, body in messages]
    client = redis.Redis.from_url(redis_url)
    try:
        counter = StoredCounter(client, key_prefix, sensor_ids_of(messages))
        assert counter.total() == 0
        writer = ReadingWriter(client, StorageSettings(key_prefix=key_prefix))
        writer.store_many(readings[:100])
        assert counter.total() == 100
        writer.store_many(readings)  # the first 100 again: duplicates are not counted
        assert counter.total() == 300
    finally:
        client.close()


def test_ingest_figures_report_medians_and_paired_ratios() -> None:
    figures = IngestFigures(ceiling=[10.0, 30.0, 20.0], consumer=[5.0, 12.0, 10.0])
    assert figures.ceiling_per_s == 20.0
    assert figures.consumer_per_s == 10.0
    assert figures.ratios == [0.5, 0.4, 0.5]

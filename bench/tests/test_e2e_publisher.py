from __future__ import annotations

from pathlib import Path

import pytest

from ev_bench.backlog import connect, queue_counts, topology
from ev_bench.e2e_publisher import publish_at_rate
from ev_bench.samples import reading_key

pytestmark = pytest.mark.integration


def test_publish_at_rate_records_the_watched_sensors(amqp_url: str, tmp_path: Path) -> None:
    result = publish_at_rate(
        amqp_url=amqp_url,
        per_s=500.0,
        count=100,
        vehicles=2,
        id_prefix="p_",
        watched=["p_0002"],
        out=tmp_path / "out.json",
        log=tmp_path / "publisher.log",
    )
    assert result["sent"] == 100
    assert result["error"] is None
    records = result["records"]
    assert len(records) == 50
    assert {r[0] for r in records} == {"p_0002"}
    assert len({reading_key(*r[:3]) for r in records}) == 50
    stamps = [r[3] for r in records]
    assert stamps == sorted(stamps)
    connection = connect(amqp_url)
    try:
        assert queue_counts(connection.channel(), topology().queues)[0] == 100
    finally:
        connection.close()

"""The staleness sweep against the real Redis: a silent sensor raises one episode, judged by
measurement time, however many sweeps run; a reading after the silence clears it at that
reading's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from _storage_helpers import make_reading

from ev_schemas import StaleRule, to_epoch_ms
from ev_storage import ReadingWriter, StorageSettings
from ev_storage.staleness import StalenessSweep

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
RULE = StaleRule.model_validate(
    {"id": "silent", "sensor_type": "battery", "stale_after": "60s", "severity": "critical"}
)


def episodes(client: redis.Redis, writer: ReadingWriter, sensor: str) -> list[list[str]]:
    fields: dict[bytes, bytes] = client.hgetall(writer.keys.alarms(sensor))  # type: ignore[assignment]
    return [
        [name.decode(), *value.decode().split(":")]
        for name, value in sorted(fields.items())
        if name.startswith(b"e|")
    ]


def test_a_silent_sensor_raises_once_and_clears_when_it_reads_again(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    settings = StorageSettings(key_prefix=key_prefix)
    writer = ReadingWriter(redis_client, settings)
    quiet_since = NOW - timedelta(minutes=10)
    writer.store_many(
        [
            make_reading(quiet_since, 50.0, "battery", "bus_quiet"),
            make_reading(NOW, 50.0, "battery", "bus_fresh"),
            make_reading(quiet_since, 50.0, "battery", "car_quiet"),  # another prefix
        ]
    )
    rule = RULE.model_copy(update={"sensor_prefix": "bus_"})
    sweeps = [StalenessSweep(redis_client, settings) for _ in range(2)]
    first = sweeps[0].sweep([rule])
    assert [(t.kind, t.sensor_id) for t in first.transitions] == [("raised", "bus_quiet")]
    (raised,) = first.transitions
    # Stale from the moment its newest reading was 60 s old, in measurement time.
    assert raised.began_ms == to_epoch_ms(quiet_since) + 60_000
    assert raised.at_ms >= to_epoch_ms(NOW)  # found now: the arrival lag is at - began
    # Another consumer's sweep, and the same one again: nothing more.
    assert sweeps[1].sweep([rule]).transitions == []
    assert sweeps[0].sweep([rule]).judged == 0
    assert len(episodes(redis_client, writer, "bus_quiet")) == 1
    # It reads again: the next sweep clears the episode at that reading's time.
    back = NOW + timedelta(seconds=1)
    writer.store_many([make_reading(back, 51.0, "battery", "bus_quiet")])
    (cleared,) = sweeps[1].sweep([rule]).transitions
    assert (cleared.kind, cleared.cleared_ms) == ("cleared", to_epoch_ms(back))
    assert sweeps[0].sweep([rule]).transitions == []
    [[_name, began, cleared_ms, _, _, severity]] = episodes(redis_client, writer, "bus_quiet")
    assert (began, cleared_ms, severity) == (
        str(raised.began_ms),
        str(to_epoch_ms(back)),
        "critical",
    )


def test_racing_sweeps_judge_atomically(
    redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sweeps that both saw no open episode (the index not yet updated) still raise one."""
    settings = StorageSettings(key_prefix=key_prefix)
    writer = ReadingWriter(redis_client, settings)
    writer.store_many([make_reading(NOW - timedelta(hours=1), 5.0, "battery", "ev_race")])
    monkeypatch.setattr(StalenessSweep, "_open", lambda self, rules: {})
    results = [StalenessSweep(redis_client, settings).sweep([RULE]) for _ in range(3)]
    assert [len(r.transitions) for r in results] == [1, 0, 0]
    assert [r.judged for r in results] == [1, 1, 1]
    assert len(episodes(redis_client, writer, "ev_race")) == 1

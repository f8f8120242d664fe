"""The alarm outbox against the real Redis: appended with the index only when enabled, one
idempotency key per transition (the same when applied twice), and a consumer group's reads,
claims, per-target records and acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import redis
from _storage_helpers import T0_MS, make_reading

from ev_schemas import Reading
from ev_storage import (
    AlarmOutbox,
    KeyLayout,
    ReadingWriter,
    StorageSettings,
    StorageUnavailable,
)
from ev_storage.alarm_outbox import idempotency_key

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Rule:
    id: str = "hot"
    sensor_type: str = "speed"
    sensor_prefix: str = ""
    above: float | None = 100.0
    below: float | None = None
    effective_clear_below: float | None = 100.0
    effective_clear_above: float | None = None
    for_ms: int | None = None
    readings: int | None = None
    severity: str = "critical"


def _speed(ms: int, value: float, sensor_id: str = "ev_out") -> Reading:
    return make_reading(ms, value, "speed", sensor_id)


def _entries(client: redis.Redis, keys: KeyLayout) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in client.xrange(keys.alarm_outbox())
    ]


def test_without_the_outbox_nothing_is_appended(
    redis_client: redis.Redis, settings: StorageSettings
) -> None:
    writer = ReadingWriter(redis_client, settings, [Rule()])
    writer.store_many([_speed(0, 120.0), _speed(1000, 50.0)])
    assert [t.kind for t in writer.last_transitions] == ["raised", "cleared"]
    assert not redis_client.exists(writer.keys.alarm_outbox())


def test_each_indexed_transition_is_appended_with_its_key(
    redis_client: redis.Redis, settings: StorageSettings
) -> None:
    writer = ReadingWriter(redis_client, replace(settings, alarm_outbox=True), [Rule()])
    writer.store_many([_speed(0, 120.0)])
    writer.store_many([_speed(1000, 50.0)])
    entries = _entries(redis_client, writer.keys)
    assert [e["kind"] for e in entries] == ["raised", "cleared"]
    raised, cleared = entries
    assert raised["sensor_id"] == "ev_out"
    assert raised["rule_id"] == "hot"
    assert raised["severity"] == "critical"
    assert raised["began_ms"] == raised["raised_ms"] == str(T0_MS)
    assert raised["cleared_ms"] == ""
    assert cleared["cleared_ms"] == str(T0_MS + 1000)
    assert raised["idempotency_key"] != cleared["idempotency_key"]
    assert len(raised["idempotency_key"]) == 32


def test_a_transition_applied_twice_keeps_its_key(
    redis_client: redis.Redis, settings: StorageSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ev_storage.alarm_index as alarm_index

    outboxed = replace(settings, alarm_outbox=True)
    dying = ReadingWriter(redis_client, outboxed, [Rule()])

    def lost(*_: object) -> None:  # the index and outbox written, the acknowledgement lost
        raise StorageUnavailable("connection lost")

    with monkeypatch.context() as patch:
        patch.setattr(alarm_index, "run_scripts", lost)
        with pytest.raises(StorageUnavailable):
            dying.store_many([_speed(0, 120.0)])
    # The redelivered reading is a duplicate, but the pending transition is applied again.
    ReadingWriter(redis_client, outboxed, [Rule()]).store_many([_speed(0, 120.0)])
    first, again = _entries(redis_client, dying.keys)
    assert first == again
    at = first["at_ms"]
    line = f"raised|speed|hot|{T0_MS}|{T0_MS}||critical|{at}|{at}|"  # raised at = at: new
    assert first["idempotency_key"] == idempotency_key("ev_out", line)


def test_the_group_reads_claims_records_and_acknowledges(
    redis_client: redis.Redis, settings: StorageSettings
) -> None:
    writer = ReadingWriter(redis_client, replace(settings, alarm_outbox=True), [Rule()])
    outbox = AlarmOutbox(redis_client, writer.keys)
    outbox.ensure_group()
    outbox.ensure_group()  # idempotent
    writer.store_many([_speed(0, 120.0, "ev_a"), _speed(0, 130.0, "ev_b")])
    assert outbox.backlog().lag == 2
    first = outbox.read_new("one", 10, None)
    assert [e.transition.sensor_id for e in first if e.transition] == ["ev_a", "ev_b"]
    assert outbox.read_new("one", 10, None) == []
    assert outbox.backlog().pending == 2
    ids = [e.entry_id for e in first]
    outbox.record_sent(ids[0], "t1")
    assert outbox.sent(ids) == [{"t1"}, set()]
    assert outbox.read_pending("one", "0", 10) == first
    assert outbox.read_pending("one", ids[0], 10) == first[1:]
    # "one" went silent: "two" claims its entries, with what was recorded.
    cursor, claimed, deleted = outbox.claim_stale("two", 0, "0-0", 10)
    assert (cursor, claimed, deleted) == ("0-0", first, [])
    assert outbox.read_pending("one", "0", 10) == []
    assert outbox.sent(ids) == [{"t1"}, set()]
    outbox.ack(ids)
    assert outbox.backlog().pending == 0
    assert outbox.sent(ids) == [set(), set()]


def test_a_trimmed_entry_comes_back_without_its_transition(
    redis_client: redis.Redis, settings: StorageSettings
) -> None:
    writer = ReadingWriter(redis_client, replace(settings, alarm_outbox=True), [Rule()])
    outbox = AlarmOutbox(redis_client, writer.keys)
    outbox.ensure_group()
    writer.store_many([_speed(0, 120.0, "ev_a"), _speed(0, 130.0, "ev_b")])
    read = outbox.read_new("one", 10, None)
    redis_client.xtrim(writer.keys.alarm_outbox(), maxlen=1, approximate=False)
    pending = outbox.read_pending("one", "0", 10)
    assert [e.transition is None for e in pending] == [True, False]
    _, claimed, deleted = outbox.claim_stale("two", 0, "0-0", 10)
    assert deleted == [read[0].entry_id]
    assert claimed == read[1:]

"""Alarm rules evaluated by the write script (alarms.lua) against the real Redis: the episodes
stored are, whatever the delivery order, batching and duplication, those the reference
(``ev_schemas.alarm_episodes``) finds over the stored readings; transitions and their times."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
import redis
from _storage_helpers import T0_MS, make_reading
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ev_schemas import Reading, from_epoch_ms
from ev_schemas.alarm_episodes import Episode, episodes
from ev_storage import AlarmTransition, ReadingWriter, StorageError, StorageSettings

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Rule:
    """An alarm rule with what the reference and the script need (as ev_schemas.AlarmRule)."""

    id: str
    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None
    for_ms: int | None = None
    readings: int | None = None
    sensor_type: str = "speed"
    sensor_prefix: str = ""
    severity: str = "warning"

    @property
    def effective_clear_below(self) -> float | None:
        return self.above if self.clear_below is None else self.clear_below

    @property
    def effective_clear_above(self) -> float | None:
        return self.below if self.clear_above is None else self.clear_above

    def triggers(self, value: float) -> bool:
        return (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below
        )

    def clears(self, value: float) -> bool:
        low, high = self.effective_clear_above, self.effective_clear_below
        return (high is None or value <= high) and (low is None or value >= low)


def _speed(ms: int, value: float, sensor_id: str) -> Reading:
    return make_reading(ms, value, "speed", sensor_id)


def stored_episodes(
    client: redis.Redis, writer: ReadingWriter, sensor: str, rule: str
) -> list[Episode]:
    prefix = f"e|speed|{rule}|".encode()
    found = []
    fields: dict[bytes, bytes] = client.hgetall(writer.keys.alarms(sensor))  # type: ignore[assignment]
    for name, value in fields.items():
        if name.startswith(prefix):
            raised, cleared = value.split(b":")[:2]
            began = int(name[len(prefix) :])
            found.append(Episode(began, int(raised), int(cleared) if cleared else None))
    return sorted(found, key=lambda e: e.began_ms)


RULES = [
    Rule("hot", above=100.0),
    Rule("hot-1m", above=100.0, clear_below=90.0, for_ms=60_000),
    Rule("slow-3", below=10.0, clear_above=20.0, readings=3),
    Rule("band", above=120.0, below=5.0, clear_below=110.0, clear_above=8.0, for_ms=20_000),
]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 1800).map(lambda s: s * 1000),
            st.sampled_from([0.0, 4.0, 7.0, 9.0, 15.0, 50.0, 95.0, 105.0, 115.0, 125.0]),
        ),
        max_size=80,
        unique_by=lambda item: item[0],
    ),
    copies=st.lists(st.integers(0, 79), max_size=20),
    seed=st.integers(0, 2**32),
    batch=st.integers(1, 30),
)
def test_episodes_are_the_references_in_any_order(
    redis_client: redis.Redis,
    key_prefix: str,
    data: list[tuple[int, float]],
    copies: list[int],
    seed: int,
    batch: int,
) -> None:
    sensor = f"al_{uuid.uuid4().hex[:10]}"
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), RULES)
    deliveries = data + [data[i] for i in copies if i < len(data)]
    random.Random(seed).shuffle(deliveries)
    raised: dict[str, int] = {}
    for first in range(0, len(deliveries), batch):
        part = deliveries[first : first + batch]
        writer.store_many([_speed(ms, v, sensor) for ms, v in part])
        for transition in writer.last_transitions:
            if transition.kind == "raised":
                raised[transition.rule_id] = raised.get(transition.rule_id, 0) + 1
    readings = [(T0_MS + ms, v) for ms, v in data]
    for rule in RULES:
        expected = episodes(rule, readings)
        assert stored_episodes(redis_client, writer, sensor, rule.id) == expected, rule.id
    if sorted(data) == data and batch >= len(data):  # one in-order call: one transition each
        for rule in RULES:
            assert raised.get(rule.id, 0) == len(episodes(rule, readings))


def test_transitions_in_order_carry_measurement_and_processing_times(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rule = Rule("hot-1m", above=100.0, clear_below=90.0, for_ms=60_000, severity="critical")
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), [rule])
    values = [50.0, 101.0, 105.0, 103.0, 95.0, 104.0, 89.0, 50.0]  # every 30 s
    seen = []
    for n, value in enumerate(values):
        writer.store_many([_speed(n * 30_000, value, "ev_hot")])
        seen += [
            (t.kind, t.began_ms - T0_MS, t.raised_ms - T0_MS, t.cleared_ms, t.severity)
            for t in writer.last_transitions
        ]
        assert all(t.at_ms > T0_MS for t in writer.last_transitions)  # processing time: now
    # Over 100 from 30 s; held 60 s at 90 s (raised); 95 is in the band: still active; 89 clears.
    assert seen == [
        ("raised", 30_000, 90_000, None, "critical"),
        ("cleared", 30_000, 90_000, T0_MS + 180_000, "critical"),
    ]
    writer.store_many([_speed(400_000, 50.0, "ev_hot")])
    assert writer.last_transitions == []


def test_a_late_reading_revises_or_retracts_an_episode(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rule = Rule("hot-3", above=100.0, readings=3)
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), [rule])
    writer.store_many([_speed(s * 1000, 110.0, "ev_late") for s in (0, 2, 4)])
    assert [t.kind for t in writer.last_transitions] == ["raised"]
    # A calm reading at 3 s breaks the run: the episode never happened.
    writer.store_many([_speed(3000, 50.0, "ev_late")])
    assert [t.kind for t in writer.last_transitions] == ["retracted"]
    assert stored_episodes(redis_client, writer, "ev_late", "hot-3") == []
    # Two more hot readings after it: three in a row again, from 4 s.
    writer.store_many([_speed(s * 1000, 120.0, "ev_late") for s in (5, 6)])
    assert stored_episodes(redis_client, writer, "ev_late", "hot-3") == [
        Episode(T0_MS + 4000, T0_MS + 6000)
    ]


def test_rules_apply_by_sensor_prefix_and_type(redis_client: redis.Redis, key_prefix: str) -> None:
    rules = [
        Rule("bus-hot", above=100.0, sensor_prefix="bus_"),
        Rule("low-bat", below=10.0, sensor_type="battery"),
    ]
    writer = ReadingWriter(
        redis_client,
        StorageSettings(key_prefix=key_prefix, history_retention=timedelta(days=1)),
        rules,
    )
    writer.store_many([_speed(0, 130.0, "bus_1"), _speed(0, 130.0, "car_1")])
    assert [(t.sensor_id, t.rule_id) for t in writer.last_transitions] == [("bus_1", "bus-hot")]
    writer.store_many([make_reading(0, 5.0, "battery", "car_1")])
    assert [(t.sensor_id, t.rule_id, t.severity) for t in writer.last_transitions] == [
        ("car_1", "low-bat", "warning")
    ]
    assert not redis_client.exists(writer.keys.alarms("car_2"))


def _index(client: redis.Redis, writer: ReadingWriter, which: str) -> set[str]:
    from ev_storage.alarm_index import alarm_group

    found: set[str] = set()
    for sensor in ("ev_idx", "ev_idx2"):
        key = writer.keys.alarm_index(alarm_group(sensor), which)
        found |= {m.decode() for m in client.zrange(key, 0, -1)}  # type: ignore[union-attr]
    return found


def test_the_fleet_index_follows_the_episodes(redis_client: redis.Redis, key_prefix: str) -> None:
    rule = Rule("hot", above=100.0)
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), [rule])
    writer.store_many([_speed(0, 120.0, "ev_idx"), _speed(0, 130.0, "ev_idx2")])
    began = T0_MS
    ids = {f"ev_idx~speed~hot~{began}", f"ev_idx2~speed~hot~{began}"}
    assert _index(redis_client, writer, "all") == ids
    assert _index(redis_client, writer, "active") == ids
    writer.store_many([_speed(1000, 50.0, "ev_idx")])  # cleared
    assert _index(redis_client, writer, "active") == {f"ev_idx2~speed~hot~{began}"}
    writer.store_many([_speed(500, 50.0, "ev_idx2")])  # late and calm: ev_idx2's stays (0 raised)
    assert not redis_client.hexists(writer.keys.alarms("ev_idx"), "pending")


def test_a_writer_dying_before_indexing_is_made_good_by_the_next_call(
    redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ev_storage import StorageUnavailable
    from ev_storage.alarm_index import AlarmIndex

    rule = Rule("hot", above=100.0)
    settings = StorageSettings(key_prefix=key_prefix)
    dying = ReadingWriter(redis_client, settings, [rule])

    def fail(self: AlarmIndex, drained: object) -> None:
        raise StorageUnavailable("connection lost")

    with monkeypatch.context() as patch:
        patch.setattr(AlarmIndex, "apply", fail)
        with pytest.raises(StorageUnavailable):
            dying.store_many([_speed(0, 120.0, "ev_idx")])
    assert redis_client.hexists(dying.keys.alarms("ev_idx"), "pending")
    assert _index(redis_client, dying, "all") == set()
    # The batch is redelivered (unacknowledged): a duplicate now, but the pending transition
    # comes back with it and is indexed; the episode itself was stored once.
    fresh = ReadingWriter(redis_client, settings, [rule])
    fresh.store_many([_speed(0, 120.0, "ev_idx")])
    assert fresh.last_transitions == []
    assert _index(redis_client, fresh, "active") == {f"ev_idx~speed~hot~{T0_MS}"}
    assert not redis_client.hexists(fresh.keys.alarms("ev_idx"), "pending")


def test_transitions_carry_the_episodes_processing_times(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    rule = Rule("hot", above=100.0, severity="critical")
    writer = ReadingWriter(redis_client, StorageSettings(key_prefix=key_prefix), [rule])
    writer.store_many([_speed(0, 110.0, "ev_times")])
    [raised] = writer.last_transitions
    assert raised.raised_at_ms == raised.at_ms
    assert raised.cleared_at_ms is None
    writer.store_many([_speed(1000, 50.0, "ev_times")])
    [cleared] = writer.last_transitions
    # Cleared later: the episode keeps the time it was raised at.
    assert (cleared.raised_at_ms, cleared.cleared_at_ms) == (raised.at_ms, cleared.at_ms)
    alarm = cleared.event().alarm
    assert alarm.alarm_id == f"ev_times~speed~hot~{T0_MS}"
    assert (alarm.state, alarm.severity) == ("cleared", "critical")
    assert alarm.raised_at == from_epoch_ms(raised.at_ms)
    assert alarm.cleared == from_epoch_ms(T0_MS + 1000)


def test_a_transition_without_processing_times_takes_at() -> None:
    """As a script before 0.2 published it: eight fields."""
    transition = AlarmTransition.parse("ev_1", b"cleared|speed|hot|1000|2000|3000|info|4000")
    assert (transition.raised_at_ms, transition.cleared_at_ms) == (None, None)
    event = transition.event()
    assert (event.kind, event.at, event.alarm.raised_at, event.alarm.cleared_at) == (
        "cleared",
        from_epoch_ms(4000),
        from_epoch_ms(4000),
        from_epoch_ms(4000),
    )
    with pytest.raises(StorageError):
        AlarmTransition.parse("ev_1", b"raised|speed|hot|1000|2000||info|4000|1")

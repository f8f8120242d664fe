"""Key layout: the contract's patterns, hash tags, and refusal of anything unchecked."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from ev_storage import InvalidKey, KeyLayout, StorageError


def test_keys_follow_the_contract() -> None:
    keys = KeyLayout()
    assert keys.latest("ev_001", "battery") == "sensor:{ev_001}:battery:latest"
    assert keys.history("ev_001", "battery") == "sensor:{ev_001}:battery:history"
    assert keys.summary("ev_001") == "sensor:{ev_001}:summary"
    assert keys.live_channel("ev_001") == "sensor:{ev_001}:live"


def test_prefix_starts_every_key() -> None:
    keys = KeyLayout("prod:")
    assert keys.latest("a.b-c_9", "speed") == "prod:sensor:{a.b-c_9}:speed:latest"
    assert keys.summary("x") == "prod:sensor:{x}:summary"


@given(
    sensor_id=st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True),
    sensor_type=st.sampled_from(["battery", "speed", "state_of_health"]),
)
def test_all_keys_of_a_sensor_share_one_cluster_slot(sensor_id: str, sensor_type: str) -> None:
    keys = KeyLayout("p:")
    slots = {
        key_slot(key.encode())
        for key in (
            keys.latest(sensor_id, sensor_type),
            keys.history(sensor_id, sensor_type),
            keys.summary(sensor_id),
        )
    }
    assert slots == {key_slot(sensor_id.encode())}


@pytest.mark.parametrize(
    "sensor_id", ["", "a" * 65, "ev 001", "ev}001", "ev{001", "ev:001", "ev*", "é", "a\n", 7]
)
def test_refuses_bad_sensor_ids(sensor_id: str) -> None:
    keys = KeyLayout()
    with pytest.raises(InvalidKey, match="sensor_id"):
        keys.latest(sensor_id, "battery")
    with pytest.raises(InvalidKey):
        keys.summary(sensor_id)
    with pytest.raises(InvalidKey):
        keys.live_channel(sensor_id)


@pytest.mark.parametrize(
    "sensor_type",
    ["", "Battery", "bat:tery", "bat tery", "1battery", "a" * 33, "history", "summary"],
)
def test_refuses_bad_sensor_types(sensor_type: str) -> None:
    with pytest.raises(InvalidKey, match="sensor_type"):
        KeyLayout().history("ev_001", sensor_type)


@pytest.mark.parametrize("prefix", ["{x}:", "a b", "x*", "p" * 101])
def test_refuses_bad_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidKey, match="prefix"):
        KeyLayout(prefix)


def test_invalid_key_is_a_storage_error_and_a_value_error() -> None:
    with pytest.raises(StorageError):
        KeyLayout().summary("no way")
    with pytest.raises(ValueError, match="sensor_id"):
        KeyLayout().summary("no way")


def test_rate_counter_key_is_the_prefix_and_the_hash() -> None:
    # The bytes of the API's counters before they moved here: a deployment's counters carry on.
    digest = hashlib.sha256(b"key:secret-key").hexdigest()[:32]
    assert KeyLayout("p:").rate_counter(digest) == f"p:ratelimit:{digest}"
    assert KeyLayout().rate_counter("0" * 32) == "ratelimit:" + "0" * 32


@pytest.mark.parametrize(
    "client_id", ["", "key:secret-key", "0" * 31, "0" * 33, "A" * 32, "g" * 32, "*" * 32, 7]
)
def test_rate_counter_refuses_anything_but_a_hash(client_id: str) -> None:
    with pytest.raises(InvalidKey, match="client id"):
        KeyLayout().rate_counter(client_id)


def test_alarm_channels_and_their_pattern() -> None:
    keys = KeyLayout("p:")
    assert keys.alarm_channel("ev_001") == "p:sensor:{ev_001}:live:alarms"
    assert keys.alarm_channel_pattern() == "p:sensor:{*}:live:alarms"
    assert keys.sensor_of_alarm_channel(keys.alarm_channel("ev.0-1")) == "ev.0-1"
    for other in (
        keys.live_channel("ev_001"),
        KeyLayout("q:").alarm_channel("ev_001"),
        "p:sensor:{}:live:alarms",
        "p:sensor:{a}b}:live:alarms",
    ):
        assert keys.sensor_of_alarm_channel(other) is None


def test_alarm_outbox_keys_share_their_own_slot() -> None:

    keys = KeyLayout("p:")
    assert keys.alarm_outbox() == "p:{alarm-outbox}"
    sent = keys.alarm_outbox_sent("1700000000000-3")
    assert sent == "p:{alarm-outbox}:sent:1700000000000-3"
    assert key_slot(sent.encode()) == key_slot(keys.alarm_outbox().encode())
    with pytest.raises(InvalidKey):
        keys.alarm_outbox_sent("1-2}x")

"""The consumer's alarm rules: the stored set wins over the file's, changes apply within the
refresh interval, and the pipeline counts and reports the transitions its writes make."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from test_pipeline import NOW, battery, delivery

from ev_consumer.alarm_rules import AlarmRulesSource
from ev_consumer.pipeline import ReadingPipeline
from ev_schemas import AlarmRuleSet, ReadingValidator, default_catalogue
from ev_storage import KeyLayout, ReadingWriter, StorageSettings

pytestmark = pytest.mark.integration

FILE = AlarmRuleSet.model_validate(
    {"rules": [{"id": "low", "sensor_type": "battery", "below": 20}]}
)
STORED = AlarmRuleSet.model_validate(
    {"rules": [{"id": "very-low", "sensor_type": "battery", "below": 10, "severity": "critical"}]}
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _pipeline(
    client: redis.Redis, key_prefix: str, clock: Clock
) -> tuple[ReadingPipeline, AlarmRulesSource]:
    writer = ReadingWriter(client, StorageSettings(key_prefix=key_prefix))
    source = AlarmRulesSource(
        client, KeyLayout(key_prefix), FILE, default_catalogue(), refresh_s=5, clock=clock
    )
    return ReadingPipeline(ReadingValidator(clock=lambda: NOW), writer, source), source


def test_the_file_applies_until_a_set_is_stored_then_the_stored_one(
    client: redis.Redis, key_prefix: str
) -> None:
    clock = Clock()
    pipeline, source = _pipeline(client, key_prefix, clock)
    pipeline([delivery(1, battery(15.0, 1))])  # below 20: the file's rule
    assert source.version == FILE.version
    assert pipeline.stats.alarm_transitions == {"raised": 1}
    client.set(KeyLayout(key_prefix).alarm_rules(), STORED.canonical_json())
    clock.now = 4.9  # not yet checked again: the file's rule still applies
    pipeline([delivery(2, battery(25.0, 2))])  # clears "low"
    assert pipeline.stats.alarm_transitions == {"raised": 1, "cleared": 1}
    clock.now = 5.0
    pipeline([delivery(3, battery(5.0, 3))])  # "very-low" now; "low" is no longer evaluated
    assert source.version == STORED.version
    assert pipeline.stats.alarm_transitions == {"raised": 2, "cleared": 1}
    alarms = client.hgetall(KeyLayout(key_prefix).alarms("ev_001"))
    episodes = sorted(name.decode() for name in alarms if name.startswith(b"e|"))  # type: ignore[union-attr]
    assert [name.rsplit("|", 1)[0] for name in episodes] == ["e|battery|low", "e|battery|very-low"]


def test_rules_on_types_the_consumer_does_not_have_are_left_out(
    client: redis.Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    pipeline, _ = _pipeline(client, key_prefix, clock)
    other = AlarmRuleSet.model_validate(
        {
            "rules": [
                {"id": "warp", "sensor_type": "warp_drive", "above": 1},
                *STORED.model_dump()["rules"],
            ]
        }
    )
    client.set(KeyLayout(key_prefix).alarm_rules(), other.canonical_json())
    pipeline([delivery(1, battery(5.0, 1))])
    assert pipeline.stats.alarm_transitions == {"raised": 1}
    assert "warp" in caplog.text

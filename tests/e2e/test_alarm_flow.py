"""Alarm rules from published readings to the API, with the real consumer and API: a threshold
episode raised and cleared in measurement time, and a silent sensor found by the consumer's
staleness sweep, then cleared when it reads again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis

from ev_schemas import AlarmRuleSet, format_epoch_ms, to_epoch_ms
from ev_storage import KeyLayout
from tests.e2e.support import Stack
from tests.e2e.test_contract_flow import publish
from tests.support import consuming, wait_until

RULES = AlarmRuleSet.model_validate(
    {
        "rules": [{"id": "motor-hot", "sensor_type": "temperature", "above": 100, "readings": 2}],
        "stale": [
            {"id": "silent", "sensor_type": "battery", "stale_after": "3s", "severity": "critical"}
        ],
    }
)


def message(sensor_type: str, value: float, unit: str, at: datetime) -> tuple[str, bytes]:
    body = {
        "sensor_id": "ev_alarm_1",
        "sensor_type": sensor_type,
        "timestamp": format_epoch_ms(to_epoch_ms(at)),
        "value": value,
        "unit": unit,
    }
    return sensor_type, json.dumps(body).encode()


def alarms(api: httpx.Client, **query: str) -> list[dict[str, object]]:
    answer = api.get("/alarms", params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


@pytest.mark.integration
def test_threshold_and_staleness_alarms_reach_the_api(
    stack: Stack, api: httpx.Client, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(KeyLayout(stack.key_prefix).alarm_rules(), RULES.canonical_json())
    finally:
        client.close()
    wait_until(consuming(stack.amqp_url, ["ev.sensor.temperature"]), 30, "the consumer consuming")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    # Two readings over 100 raise (readings: 2), one at 90 clears; delivered out of order.
    publish(
        stack.amqp_url,
        [
            message("temperature", 90, "celsius", t0 + timedelta(seconds=20)),
            message("temperature", 120, "celsius", t0),
            message("temperature", 130, "celsius", t0 + timedelta(seconds=10)),
            message("battery", 70, "percentage", t0),  # and then nothing: stale
        ],
    )

    def both_listed() -> bool:
        return {item["rule_id"] for item in alarms(api)} == {"motor-hot", "silent"}

    wait_until(both_listed, 30, "both alarms listed")
    hot = alarms(api, rule="motor-hot")[0]
    assert (hot["state"], hot["began"], hot["raised"], hot["cleared"]) == (
        "cleared",
        format_epoch_ms(to_epoch_ms(t0)),
        format_epoch_ms(to_epoch_ms(t0 + timedelta(seconds=10))),
        format_epoch_ms(to_epoch_ms(t0 + timedelta(seconds=20))),
    )
    silent = alarms(api, rule="silent")[0]
    assert (silent["state"], silent["severity"]) == ("active", "critical")
    # Stale from 3 s after its last reading, in measurement time; found minutes later.
    assert silent["began"] == format_epoch_ms(to_epoch_ms(t0 + timedelta(seconds=3)))
    back = datetime.now(UTC).replace(microsecond=0)
    publish(stack.amqp_url, [message("battery", 69, "percentage", back)])
    wait_until(lambda: alarms(api, state="active") == [], 30, "the stale alarm cleared")
    assert alarms(api, rule="silent")[0]["cleared"] == format_epoch_ms(to_epoch_ms(back))

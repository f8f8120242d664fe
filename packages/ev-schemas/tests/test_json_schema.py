from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from ev_schemas import default_catalogue
from ev_schemas.json_schema import (
    alarm_rules_json_schema,
    reading_json_schema,
    render,
    render_alarm_rules,
)

CHECKED_IN = Path(__file__).resolve().parents[3] / "docs" / "reading.schema.json"


def test_checked_in_schema_is_current() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == render(), (
        "docs/reading.schema.json is stale: run `nox -s schema`"
    )


def test_schema_is_valid_and_accepts_its_example() -> None:
    schema = reading_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for example in schema["examples"]:
        jsonschema.validate(example, schema)


@pytest.mark.parametrize(
    "reading",
    [
        {
            "sensor_id": "ev_001",
            "sensor_type": "battery",
            "timestamp": "x",
            "value": 1,
            "unit": "mph",
        },
        {
            "sensor_id": "ev 001",
            "sensor_type": "battery",
            "timestamp": "x",
            "value": 1,
            "unit": "%",
        },
        {"sensor_id": "ev_001", "sensor_type": "warp", "timestamp": "x", "value": 1, "unit": "%"},
        {
            "sensor_id": "ev_001",
            "sensor_type": "battery",
            "timestamp": "x",
            "value": "1",
            "unit": "%",
        },
    ],
)
def test_schema_rejects_what_the_validator_rejects(reading: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(reading, reading_json_schema())


def test_schema_lists_every_unit_of_every_type() -> None:
    text = json.dumps(reading_json_schema())
    for sensor_type in default_catalogue().values():
        for unit in sensor_type.accepted_units:
            assert json.dumps(unit) in text


ALARM_RULES_CHECKED_IN = CHECKED_IN.parent / "alarm-rules.schema.json"
ALARM_RULES_EXAMPLE_FILE = CHECKED_IN.parent / "examples" / "alarm-rules.yaml"


def test_checked_in_alarm_rules_schema_is_current() -> None:
    assert ALARM_RULES_CHECKED_IN.read_text(encoding="utf-8") == render_alarm_rules(), (
        "docs/alarm-rules.schema.json is stale: run `nox -s schema`"
    )


def test_alarm_rules_schema_accepts_the_examples() -> None:
    schema = alarm_rules_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for example in schema["examples"]:
        jsonschema.validate(example, schema)
    jsonschema.validate(yaml.safe_load(ALARM_RULES_EXAMPLE_FILE.read_text("utf-8")), schema)


@pytest.mark.parametrize(
    "rules",
    [
        {"rules": [{"id": "Bad", "sensor_type": "battery", "above": 1}]},
        {"rules": [{"id": "a", "sensor_type": "battery", "above": "1"}]},
        {"rules": [{"id": "a", "sensor_type": "battery", "above": 1, "for": "1 minute"}]},
        {"rules": [{"id": "a", "sensor_type": "battery", "above": 1, "severity": "fatal"}]},
        {"rules": [{"id": "a", "sensor_type": "battery", "above": 1, "readings": 0}]},
        {"stale": [{"id": "a", "sensor_type": "battery"}]},
        {"stale": [{"id": "a", "sensor_type": "battery", "stale_after": "1m", "x": 1}]},
        {"rulez": []},
    ],
)
def test_alarm_rules_schema_rejects_what_the_models_reject(rules: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rules, alarm_rules_json_schema())

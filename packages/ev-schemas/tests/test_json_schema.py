from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ev_schemas import default_catalogue
from ev_schemas.json_schema import reading_json_schema, render

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

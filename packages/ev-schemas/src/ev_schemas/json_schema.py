"""JSON Schemas of the published reading (for publishers written in other languages) and of the
alarm rules file.

``python -m ev_schemas [reading|alarm-rules]`` prints one; the repository keeps copies under
``docs/``.
"""

from __future__ import annotations

import json
from typing import Any

from ev_schemas.alarm_rules import ALARM_RULES_EXAMPLE, MAX_RULES, AlarmRuleSet
from ev_schemas.catalogue import Catalogue, default_catalogue
from ev_schemas.reading import SENSOR_ID_RULE

SCHEMA_ID = "https://github.com/ev-telemetry/ev-telemetry/docs/reading.schema.json"


def reading_json_schema(catalogue: Catalogue | None = None) -> dict[str, Any]:
    """The published reading as JSON Schema 2020-12, with one branch per sensor type."""
    catalogue = catalogue if catalogue is not None else default_catalogue()
    branches = [
        {
            "properties": {
                "sensor_type": {"const": sensor_type.name},
                "unit": {"enum": list(sensor_type.accepted_units)},
            },
            "description": (
                f"{sensor_type.description} Canonical unit {sensor_type.unit}; plausible "
                f"range {sensor_type.minimum:g} to {sensor_type.maximum:g} {sensor_type.unit} "
                "after conversion."
            ),
        }
        for sensor_type in catalogue.values()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "EV sensor reading",
        "description": (
            "Body of a message published to exchange ev.sensors with routing key "
            "ev.sensor.<sensor_type>. Range checks and the future-skew limit are applied by "
            "the consumer."
        ),
        "type": "object",
        "required": ["sensor_id", "sensor_type", "timestamp", "value", "unit"],
        "properties": {
            "sensor_id": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.\\-]{1,64}$",
                "description": f"{SENSOR_ID_RULE}.",
            },
            "sensor_type": {"enum": list(catalogue)},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "RFC 3339 with a time zone offset or Z.",
            },
            "value": {"type": "number"},
            "unit": {"type": "string"},
        },
        "oneOf": branches,
        "examples": [
            {
                "sensor_id": "ev_001",
                "sensor_type": "battery",
                "timestamp": "2024-02-01T12:00:00Z",
                "value": 85.5,
                "unit": "percentage",
            }
        ],
    }


def render() -> str:
    """The schema as it is checked in: indented, sorted keys, trailing newline."""
    return json.dumps(reading_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


ALARM_RULES_SCHEMA_ID = "https://github.com/ev-telemetry/ev-telemetry/docs/alarm-rules.schema.json"


def alarm_rules_json_schema() -> dict[str, Any]:
    """The alarm rules file (``ALARM_RULES_FILE``, the body of ``PUT /api/v1/alarm-rules``) as
    JSON Schema 2020-12. Which sensor types exist is configuration, checked when rules load."""
    schema = AlarmRuleSet.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": ALARM_RULES_SCHEMA_ID,
        **schema,
        "title": "EV alarm rules",
        "description": (
            "Alarm rules and staleness rules (docs/alarms.md), as YAML or JSON. Rule ids are "
            f"unique across both lists; at most {MAX_RULES} rules in all; each sensor_type must "
            "be a configured type."
        ),
        "examples": [ALARM_RULES_EXAMPLE],
    }


def render_alarm_rules() -> str:
    """The alarm rules' schema as it is checked in (like :func:`render`)."""
    return (
        json.dumps(alarm_rules_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )

"""Reading a rule set from a file (``ALARM_RULES_FILE``): YAML or JSON, by extension.

YAML needs PyYAML, the ``yaml`` extra (``ev-schemas[yaml]``); JSON needs nothing. Every problem is
an :class:`~ev_schemas.alarm_rules.InvalidAlarmRules` whose text names the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ev_schemas.alarm_rules import AlarmRuleSet, InvalidAlarmRules
from ev_schemas.catalogue import Catalogue

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)


def load_alarm_rules(path: Path, catalogue: Catalogue) -> AlarmRuleSet:
    """The rule set in ``path`` (``.yaml``, ``.yml`` or ``.json``), its types in ``catalogue``."""
    suffix = path.suffix.lower()
    if suffix not in YAML_SUFFIXES + JSON_SUFFIXES:
        raise InvalidAlarmRules([f"{path}: must end in .yaml, .yml or .json"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidAlarmRules([f"{path}: cannot read: {reason}"]) from None
    data = _parse_yaml(path, text) if suffix in YAML_SUFFIXES else _parse_json(path, text)
    if not isinstance(data, dict):
        raise InvalidAlarmRules(
            [f"{path}: must hold a mapping with `rules` and/or `stale` lists at the top"]
        )
    try:
        return AlarmRuleSet.checked(data, catalogue)
    except InvalidAlarmRules as exc:
        raise InvalidAlarmRules([f"{path}: {problem}" for problem in exc.problems]) from None


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAlarmRules(
            [f"{path}: not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
        ) from None


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise InvalidAlarmRules(
            [f"{path}: reading YAML needs PyYAML: install ev-schemas[yaml], or use a .json file"]
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InvalidAlarmRules([f"{path}: not YAML: {problem}{where}"]) from None

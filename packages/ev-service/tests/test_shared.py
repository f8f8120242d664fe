"""The shared mixins' checks at load time: ALARM_RULES_FILE (the other mixins are covered in
test_environment.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ev_schemas import AlarmRuleSet
from ev_service import SERVICE_CONFIG, AlarmRulesVar, ConfigurationError, load_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "alarm-rules.yaml"


class RulesSettings(AlarmRulesVar):
    model_config = SERVICE_CONFIG


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALARM_RULES_FILE", "SENSOR_TYPES"):
        monkeypatch.delenv(name, raising=False)


def test_no_file_no_rules() -> None:
    settings = load_settings(RulesSettings)
    assert settings.alarm_rules_file is None
    assert settings.alarm_rules() == AlarmRuleSet()


def test_the_file_is_read_when_the_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALARM_RULES_FILE", str(EXAMPLE))
    rules = load_settings(RulesSettings).alarm_rules()
    assert "pack-hot" in {rule.id for rule in rules.rules}


def test_rule_types_are_checked_against_the_configured_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALARM_RULES_FILE", str(EXAMPLE))
    monkeypatch.setenv("SENSOR_TYPES", "battery,speed")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(RulesSettings)
    assert str(caught.value) == (
        f"ALARM_RULES_FILE: {EXAMPLE}: rules[1] 'pack-hot': sensor_type: unknown sensor type "
        f"'temperature'; configured: battery, speed; {EXAMPLE}: rules[2] 'pack-voltage-band': "
        "sensor_type: unknown sensor type 'voltage'; configured: battery, speed"
    )


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("missing.yaml", None, "cannot read: No such file or directory"),
        ("rules.json", "{", "not JSON"),
        ("rules.yaml", "rules:\n  - {id: x, sensor_type: battery}\n", "rules[0] 'x': needs"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_variable_and_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str | None, reason: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("ALARM_RULES_FILE", str(path))
    with pytest.raises(ConfigurationError) as caught:
        load_settings(RulesSettings)
    message = caught.value.line("ev-test")
    assert message.startswith(f"ev-test: invalid configuration: ALARM_RULES_FILE: {path}: ")
    assert reason in message
    assert "\n" not in message

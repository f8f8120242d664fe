from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from ev_schemas import AlarmRuleSet, InvalidAlarmRules, default_catalogue, load_alarm_rules

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "alarm-rules.yaml"
CATALOGUE = default_catalogue()


def test_the_example_file_loads() -> None:
    rules = load_alarm_rules(EXAMPLE, CATALOGUE)
    assert [rule.id for rule in rules.rules] == [
        "battery-low",
        "pack-hot",
        "pack-voltage-band",
        "bus-speeding",
    ]
    assert rules.rules[1].for_ms == 60_000
    assert rules.rules[3].sensor_prefix == "bus_"
    assert rules.stale[0].stale_after_ms == 300_000


@pytest.mark.parametrize("suffix", [".json", ".JSON", ".yml", ".yaml"])
def test_yaml_and_json_give_the_same_set(tmp_path: Path, suffix: str) -> None:
    expected = load_alarm_rules(EXAMPLE, CATALOGUE)
    path = tmp_path / f"rules{suffix}"
    path.write_text(json.dumps(expected.canonical()), encoding="utf-8")  # JSON is YAML too
    loaded = load_alarm_rules(path, CATALOGUE)
    assert loaded == expected
    assert loaded.version == expected.version


def problem(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidAlarmRules) as caught:
        load_alarm_rules(path, CATALOGUE)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidAlarmRules, match=r"nope\.yaml: cannot read: No such file"):
        load_alarm_rules(tmp_path / "nope.yaml", CATALOGUE)


def test_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(InvalidAlarmRules, match="cannot read: Is a directory"):
        load_alarm_rules(tmp_path / "dir.json", CATALOGUE)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("rules.toml", "", "must end in .yaml, .yml or .json"),
        ("rules.json", "{", "not JSON: Expecting property name"),
        ("rules.json", "[]", "must hold a mapping with `rules` and/or `stale` lists"),
        ("rules.yaml", "", "must hold a mapping"),
        ("rules.yaml", "rules: [", "not YAML: "),
        ("rules.yaml", "rules:\n  - id: x\n   bad", "not YAML: "),
        ("rules.yaml", b"\xff\xfe", "cannot read: 'utf-8' codec can't decode"),
        (
            "rules.yaml",
            "rules:\n  - id: hot\n    sensor_type: temperature\n    above: .inf\n",
            "rules[0] 'hot': above: Input should be a finite number",
        ),
        (
            "rules.yaml",
            "stale:\n  - {id: quiet, sensor_type: warp, stale_after: 1m}\n",
            "stale[0] 'quiet': sensor_type: unknown sensor type 'warp'",
        ),
    ],
)
def test_errors_are_one_line_naming_the_file(
    tmp_path: Path, name: str, text: str | bytes, expected: str
) -> None:
    assert expected in problem(tmp_path / name, text)


def test_every_problem_names_the_file(tmp_path: Path) -> None:
    text = json.dumps({"rules": [{"id": "a", "sensor_type": "battery"}], "stale": [{"id": "b"}]})
    message = problem(tmp_path / "rules.json", text)
    # Three problems, each prefixed (problem() strips the first prefix).
    assert message.count(str(tmp_path / "rules.json")) == 2


def test_yaml_without_pyyaml_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_yaml(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "yaml":
            raise ImportError("no yaml here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    assert "install ev-schemas[yaml], or use a .json file" in problem(
        tmp_path / "rules.yaml", "rules: []"
    )
    path = tmp_path / "rules.json"
    path.write_text('{"rules": []}', encoding="utf-8")
    assert load_alarm_rules(path, CATALOGUE) == AlarmRuleSet()

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ev_schemas import (
    ALARM_RULES_EXAMPLE,
    MAX_RULES,
    AlarmRule,
    AlarmRuleSet,
    InvalidAlarmRules,
    StaleRule,
    default_catalogue,
)

CATALOGUE = default_catalogue()


def rule(**fields: Any) -> dict[str, Any]:
    return {"id": "r1", "sensor_type": "battery", **fields}


def problems(data: Any) -> str:
    with pytest.raises(InvalidAlarmRules) as caught:
        AlarmRuleSet.checked(data, CATALOGUE)
    assert all("\n" not in problem for problem in caught.value.problems)
    return str(caught.value)


def test_defaults() -> None:
    parsed = AlarmRule.model_validate(rule(above=90))
    assert parsed.sensor_prefix == ""
    assert parsed.severity == "warning"
    assert parsed.description == ""
    assert (parsed.below, parsed.clear_below, parsed.clear_above) == (None, None, None)
    assert (parsed.for_, parsed.for_ms, parsed.readings) == (None, None, None)
    assert AlarmRuleSet() == AlarmRuleSet.model_validate({})


def test_for_is_the_key_and_for_underscore_the_attribute() -> None:
    parsed = AlarmRule.model_validate(rule(above=1, **{"for": "5m"}))
    assert parsed.for_ == timedelta(minutes=5)
    assert parsed.for_ms == 300_000
    assert parsed.model_dump(by_alias=True, mode="json")["for"] == "5m"
    assert AlarmRule(id="x", sensor_type="battery", above=1, for_=30).for_ms == 30_000


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "rules[0] 'r1': needs `above`, `below` or both"),
        ({"above": 10, "below": 10}, "rules[0] 'r1': below (10) must be less than above (10)"),
        ({"above": 10, "below": 20}, "below (20) must be less than above (10)"),
        ({"below": 10, "clear_below": 5}, "rules[0] 'r1': clear_below needs `above`"),
        ({"above": 10, "clear_above": 5}, "rules[0] 'r1': clear_above needs `below`"),
        ({"above": 10, "clear_below": 11}, "clear_below (11) must be <= above (10)"),
        ({"below": 10, "clear_above": 9}, "clear_above (9) must be >= below (10)"),
        (
            {"below": 10, "above": 20, "clear_above": 16, "clear_below": 14},
            "no value could clear: clear_above (16) is greater than clear_below (14)",
        ),
        ({"above": 1, "for": "1m", "readings": 2}, "give at most one of `for` and `readings`"),
        ({"above": 1, "readings": 0}, "rules[0] 'r1': readings: Input should be greater than"),
        ({"above": 1, "readings": 1.5}, "rules[0] 'r1': readings: Input should be a valid int"),
        ({"above": 1, "for": "-1s"}, "rules[0] 'r1': for: must be a duration"),
        ({"above": 1, "for": -1}, "rules[0] 'r1': for: must not be negative"),
        ({"above": math.inf}, "rules[0] 'r1': above: Input should be a finite number"),
        ({"below": math.nan}, "rules[0] 'r1': below: Input should be a finite number"),
        ({"above": "90"}, "rules[0] 'r1': above: Input should be a valid number"),
        ({"above": True}, "rules[0] 'r1': above: Input should be a valid number"),
        ({"above": 1, "severity": "fatal"}, "rules[0] 'r1': severity: Input should be 'info'"),
        ({"above": 1, "description": "x" * 501}, "rules[0] 'r1': description: String should"),
        ({"above": 1, "sensor_prefix": "ev 0"}, "rules[0] 'r1': sensor_prefix: String should"),
        ({"above": 1, "sensor_prefix": "e" * 65}, "rules[0] 'r1': sensor_prefix: String should"),
        ({"above": 1, "clear_bellow": 0}, "rules[0] 'r1': clear_bellow: Extra inputs are not"),
        (
            {"above": 1, "sensor_type": "warp"},
            "rules[0] 'r1': sensor_type: unknown sensor type 'warp'; configured: battery,",
        ),
    ],
)
def test_each_alarm_rule_check_names_rule_and_field(fields: dict[str, Any], expected: str) -> None:
    assert expected in problems({"rules": [rule(**fields)]})


@pytest.mark.parametrize("rule_id", ["", "Upper", "-lead", "a b", "x" * 65, "é"])
def test_rule_ids_are_checked(rule_id: str) -> None:
    assert "rules[0]" in problems({"rules": [rule(id=rule_id, above=1)]})
    assert ": id: String should match pattern" in problems({"rules": [rule(id=rule_id, above=1)]})


@pytest.mark.parametrize("rule_id", ["a", "battery-low", "v2.motor_hot", "9" * 64])
def test_valid_rule_ids(rule_id: str) -> None:
    assert AlarmRule.model_validate(rule(id=rule_id, above=1)).id == rule_id


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "stale[0] 'r1': stale_after: Field required"),
        ({"stale_after": 0}, "stale[0] 'r1': stale_after must be greater than 0"),
        ({"stale_after": "0s"}, "stale[0] 'r1': stale_after must be greater than 0"),
        ({"stale_after": "soon"}, "stale[0] 'r1': stale_after: must be a duration"),
        ({"stale_after": "1m", "above": 1}, "stale[0] 'r1': above: Extra inputs"),
        ({"stale_after": "1m", "sensor_type": "warp"}, "stale[0] 'r1': sensor_type: unknown"),
    ],
)
def test_each_stale_rule_check_names_rule_and_field(fields: dict[str, Any], expected: str) -> None:
    assert expected in problems({"stale": [rule(**fields)]})


def test_stale_rule_helpers() -> None:
    stale = StaleRule.model_validate(rule(stale_after="1.5s", sensor_prefix="ev_"))
    assert stale.stale_after_ms == 1500
    assert stale.applies_to("ev_001", "battery")
    assert not stale.applies_to("bus_1", "battery")
    assert not stale.applies_to("ev_001", "speed")


def test_ids_are_unique_across_both_lists() -> None:
    data = {"rules": [rule(above=1)], "stale": [rule(stale_after="1m")]}
    assert problems(data) == "stale[0] 'r1': id: already used by rules[0]"
    data = {"rules": [rule(above=1), rule(below=1)]}
    assert problems(data) == "rules[1] 'r1': id: already used by rules[0]"


def test_at_most_200_rules_in_all() -> None:
    rules = [rule(id=f"r{n}", above=n) for n in range(150)]
    stale = [rule(id=f"s{n}", stale_after="1m") for n in range(MAX_RULES - 150)]
    assert len(AlarmRuleSet.checked({"rules": rules, "stale": stale}, CATALOGUE).rules) == 150
    stale.append(rule(id="one-more", stale_after="1m"))
    assert problems({"rules": rules, "stale": stale}) == "at most 200 rules in all, not 201"


def test_the_top_level_is_checked() -> None:
    assert "rulez: Extra inputs are not permitted" in problems({"rulez": []})
    assert "rules: Input should be a valid list" in problems({"rules": {}})
    assert "Input should be a valid dictionary" in problems([])


def test_several_problems_are_all_reported() -> None:
    text = problems({"rules": [rule(above=math.inf), rule(id="r2", below=1, readings=0)]})
    assert text.count(";") == 1
    assert "rules[0] 'r1': above" in text
    assert "rules[1] 'r2': readings" in text


def test_a_rule_without_a_usable_id_is_named_by_position() -> None:
    assert problems({"rules": [{"sensor_type": "battery", "above": 1}]}) == (
        "rules[0]: id: Field required"
    )


def test_applies_to_matches_type_and_prefix() -> None:
    parsed = AlarmRule.model_validate(rule(above=1, sensor_prefix="bus_"))
    assert parsed.applies_to("bus_7", "battery")
    assert not parsed.applies_to("bus_7", "speed")
    assert not parsed.applies_to("ev_bus_7", "battery")
    assert AlarmRule.model_validate(rule(above=1)).applies_to("anything", "battery")


def test_triggers_and_clears_with_hysteresis() -> None:
    hot = AlarmRule.model_validate(rule(above=60, clear_below=55))
    assert (hot.triggers(60.5), hot.clears(60.5)) == (True, False)
    assert (hot.triggers(60), hot.clears(60)) == (False, False)  # in the hysteresis gap
    assert (hot.triggers(55), hot.clears(55)) == (False, True)
    low = AlarmRule.model_validate(rule(below=10))
    assert (low.effective_clear_above, low.effective_clear_below) == (10, None)
    assert (low.triggers(9.9), low.clears(10)) == (True, True)
    band = AlarmRule.model_validate(rule(below=300, above=450))
    assert [band.triggers(v) for v in (299, 300, 450, 451)] == [True, False, False, True]
    assert [band.clears(v) for v in (299, 300, 450, 451)] == [False, True, True, False]


finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def alarm_rules(draw: st.DrawFn) -> AlarmRule:
    """Any valid threshold rule: above, below or a band, with or without hysteresis."""
    kind = draw(st.sampled_from(["above", "below", "band"]))
    fields: dict[str, Any] = {}
    if kind in ("above", "band"):
        fields["above"] = draw(finite)
    if kind in ("below", "band"):
        top = fields.get("above", 1e6 + 1)
        fields["below"] = draw(st.floats(-1e6 - 1, top, exclude_max=True))
    if "above" in fields and draw(st.booleans()):
        floor = fields.get("below", -1e6 - 1)
        fields["clear_below"] = draw(st.floats(floor, fields["above"]))
    if "below" in fields and draw(st.booleans()):
        ceiling = fields.get("clear_below", fields.get("above", 1e6 + 1))
        fields["clear_above"] = draw(st.floats(fields["below"], ceiling))
    return AlarmRule.model_validate(rule(**fields))


@given(alarm_rules(), finite)
def test_a_value_never_both_triggers_and_clears(parsed: AlarmRule, value: float) -> None:
    assert not (parsed.triggers(value) and parsed.clears(value))


@given(alarm_rules(), finite)
def test_without_hysteresis_every_value_triggers_or_clears(parsed: AlarmRule, value: float) -> None:
    plain = parsed.model_copy(update={"clear_below": None, "clear_above": None})
    assert plain.triggers(value) != plain.clears(value)


@given(alarm_rules())
def test_the_thresholds_themselves_clear(parsed: AlarmRule) -> None:
    for edge in (parsed.effective_clear_below, parsed.effective_clear_above):
        if edge is not None:
            assert parsed.clears(edge)
            assert not parsed.triggers(edge)


def test_version_is_stable_and_follows_content() -> None:
    one = AlarmRuleSet.checked(ALARM_RULES_EXAMPLE, CATALOGUE)
    again = AlarmRuleSet.checked(one.canonical(), CATALOGUE)
    assert one == again
    assert one.version == again.version
    assert len(one.version) == 16
    assert int(one.version, 16) >= 0
    spelt_otherwise = {
        "stale": [{"id": "battery-silent", "sensor_type": "battery", "stale_after": 300}],
        "rules": ALARM_RULES_EXAMPLE["rules"],
    }
    assert AlarmRuleSet.checked(spelt_otherwise, CATALOGUE).version == one.version
    changed = one.model_copy(update={"stale": []})
    assert changed.version != one.version
    assert AlarmRuleSet().version != one.version


def test_canonical_json_uses_file_names() -> None:
    text = AlarmRuleSet.checked(ALARM_RULES_EXAMPLE, CATALOGUE).canonical_json()
    assert '"for":"1m"' in text
    assert "for_" not in text
    assert '"stale_after":"5m"' in text

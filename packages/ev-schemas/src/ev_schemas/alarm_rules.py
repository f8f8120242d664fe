"""Alarm rules and staleness rules: the rule set the consumer evaluates and the API manages.

A rule raises when a reading's value is above ``above`` or below ``below`` (both: outside the
band), held ``for`` a duration of measurement time or for ``readings`` consecutive readings, and
clears with hysteresis (``clear_below``/``clear_above``). How rules are evaluated is written with
the evaluator (docs/alarms.md); this module only says what a valid rule is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from ev_schemas.catalogue import Catalogue
from ev_schemas.durations import Duration, duration_ms
from ev_schemas.errors import SchemaError

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
SENSOR_PREFIX_PATTERN = r"^[A-Za-z0-9_.\-]{0,64}$"
MAX_RULES = 200

#: The rule set of the OpenAPI and JSON Schema examples (docs/examples/alarm-rules.yaml is longer).
ALARM_RULES_EXAMPLE: dict[str, Any] = {
    "rules": [
        {
            "id": "battery-low",
            "sensor_type": "battery",
            "below": 10,
            "clear_above": 15,
            "readings": 3,
            "severity": "critical",
            "description": "State of charge under 10 %.",
        },
        {
            "id": "pack-hot",
            "sensor_type": "temperature",
            "above": 60,
            "clear_below": 55,
            "for": "60s",
        },
    ],
    "stale": [{"id": "battery-silent", "sensor_type": "battery", "stale_after": "5m"}],
}

Severity = Literal["info", "warning", "critical"]
Threshold = Annotated[float, Field(strict=True, allow_inf_nan=False)]

RuleId = Annotated[
    str,
    Field(
        pattern=RULE_ID_PATTERN,
        description="Unique in the rule set: 1-64 lowercase letters, digits, '_', '.' or '-', "
        "starting with a letter or digit.",
        examples=["battery-low"],
    ),
]
SensorPrefix = Annotated[
    str,
    Field(
        pattern=SENSOR_PREFIX_PATTERN,
        description="Only sensors whose id starts with this (case-sensitive): at most 64 "
        "letters, digits, '_', '-' or '.'. Empty: every sensor of the type.",
        examples=["ev_"],
    ),
]
Description = Annotated[str, Field(max_length=500, description="Free text for people.")]


class InvalidAlarmRules(SchemaError):
    """A rule set that cannot be used; ``problems`` each name the rule and the field."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "; ".join(self.problems)


class _Rule(BaseModel):
    """What alarm and staleness rules share: id, scope, severity, description."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)

    id: RuleId
    sensor_type: str = Field(description="A configured sensor type.", examples=["battery"])
    sensor_prefix: SensorPrefix = ""
    severity: Severity = Field(default="warning", description="How urgent the alarm is.")
    description: Description = ""

    def applies_to(self, sensor_id: str, sensor_type: str) -> bool:
        """Whether readings of ``sensor_id`` and ``sensor_type`` fall under this rule."""
        return sensor_type == self.sensor_type and sensor_id.startswith(self.sensor_prefix)


class AlarmRule(_Rule):
    """A threshold on one sensor type: raise above ``above`` or below ``below``, clear with
    hysteresis, optionally only once the condition has held ``for`` a time or ``readings``."""

    above: Threshold | None = Field(
        default=None, description="Trigger when the value is greater than this."
    )
    below: Threshold | None = Field(
        default=None, description="Trigger when the value is less than this."
    )
    clear_below: Threshold | None = Field(
        default=None,
        description="With `above`: clear only once the value is at or below this (<= `above`). "
        "Default: `above`.",
    )
    clear_above: Threshold | None = Field(
        default=None,
        description="With `below`: clear only once the value is at or above this (>= `below`). "
        "Default: `below`.",
    )
    for_: Duration | None = Field(
        default=None,
        alias="for",
        description="Raise only once the condition has held this long in measurement time.",
    )
    readings: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        description="Raise only once this many consecutive readings meet the condition.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.above is None and self.below is None:
            raise ValueError("needs `above`, `below` or both")
        if self.above is not None and self.below is not None and not self.below < self.above:
            raise ValueError(
                f"below ({self.below:g}) must be less than above ({self.above:g}) for a band"
            )
        if self.clear_below is not None:
            if self.above is None:
                raise ValueError("clear_below needs `above`")
            if self.clear_below > self.above:
                raise ValueError(
                    f"clear_below ({self.clear_below:g}) must be <= above ({self.above:g})"
                )
        if self.clear_above is not None:
            if self.below is None:
                raise ValueError("clear_above needs `below`")
            if self.clear_above < self.below:
                raise ValueError(
                    f"clear_above ({self.clear_above:g}) must be >= below ({self.below:g})"
                )
        if self.above is not None and self.below is not None:
            low, high = self.effective_clear_above, self.effective_clear_below
            if low is not None and high is not None and low > high:
                raise ValueError(
                    f"no value could clear: clear_above ({low:g}) is greater than "
                    f"clear_below ({high:g})"
                )
        if self.for_ is not None and self.readings is not None:
            raise ValueError("give at most one of `for` and `readings`")
        return self

    @property
    def for_ms(self) -> int | None:
        """``for`` in milliseconds; None when not given."""
        return None if self.for_ is None else duration_ms(self.for_)

    @property
    def effective_clear_below(self) -> float | None:
        """The value at or below which an `above` condition clears (None without `above`)."""
        return self.above if self.clear_below is None else self.clear_below

    @property
    def effective_clear_above(self) -> float | None:
        """The value at or above which a `below` condition clears (None without `below`)."""
        return self.below if self.clear_above is None else self.clear_above

    def triggers(self, value: float) -> bool:
        """Whether ``value`` meets the raising condition."""
        return (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below
        )

    def clears(self, value: float) -> bool:
        """Whether ``value`` meets the clearing condition (with hysteresis, a value may meet
        neither condition: the alarm then keeps its state)."""
        high, low = self.effective_clear_below, self.effective_clear_above
        return (high is None or value <= high) and (low is None or value >= low)


class StaleRule(_Rule):
    """A sensor of the type is stale when it has no reading with a measurement time newer than
    now minus ``stale_after``."""

    stale_after: Duration = Field(description="Silence, in measurement time, that makes it stale.")

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.stale_after <= timedelta(0):
            raise ValueError("stale_after must be greater than 0")
        return self

    @property
    def stale_after_ms(self) -> int:
        return duration_ms(self.stale_after)


class AlarmRuleSet(BaseModel):
    """Every alarm and staleness rule, as a file or the API holds them; ids unique across both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[AlarmRule] = Field(default_factory=list, description="Threshold rules.")
    stale: list[StaleRule] = Field(default_factory=list, description="Staleness rules.")

    @model_validator(mode="after")
    def _unique_and_bounded(self) -> Self:
        if len(self.rules) + len(self.stale) > MAX_RULES:
            raise ValueError(
                f"at most {MAX_RULES} rules in all, not {len(self.rules) + len(self.stale)}"
            )
        seen: dict[str, str] = {}
        for where, rule in self._located():
            if rule.id in seen:
                raise ValueError(f"{where} {rule.id!r}: id: already used by {seen[rule.id]}")
            seen[rule.id] = where
        return self

    def _located(self) -> Iterator[tuple[str, _Rule]]:
        for n, rule in enumerate(self.rules):
            yield f"rules[{n}]", rule
        for n, stale in enumerate(self.stale):
            yield f"stale[{n}]", stale

    @classmethod
    def checked(cls, data: Any, catalogue: Catalogue) -> AlarmRuleSet:
        """``data`` (parsed JSON or YAML) as a rule set whose types are in ``catalogue``;
        :class:`InvalidAlarmRules` with one problem per fault, each naming rule and field."""
        try:
            rule_set = cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidAlarmRules(describe_errors(exc.errors(), data)) from None
        return rule_set.for_catalogue(catalogue)

    def for_catalogue(self, catalogue: Catalogue) -> Self:
        """``self`` if every rule's type is in ``catalogue``, else :class:`InvalidAlarmRules`."""
        problems = [
            f"{where} {rule.id!r}: sensor_type: unknown sensor type {rule.sensor_type!r}; "
            f"configured: {', '.join(catalogue)}"
            for where, rule in self._located()
            if rule.sensor_type not in catalogue
        ]
        if problems:
            raise InvalidAlarmRules(problems)
        return self

    def canonical(self) -> dict[str, Any]:
        """The set as JSON data: field names as in files (`for`), durations canonical."""
        return self.model_dump(mode="json", by_alias=True)

    def canonical_json(self) -> str:
        """Compact JSON with sorted keys: equal sets have equal text (and version)."""
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))

    @property
    def version(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`canonical_json`: changes with any rule."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


RuleSource = Literal["api", "file", "none"]


class AlarmRulesDocument(BaseModel):
    """The rule set in force as the API returns it: the rules, their version and their source
    (``api``: stored by a PUT, which wins over the file; ``file``: ALARM_RULES_FILE; ``none``)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [{"version": "3f1c2a9b8d7e6f50", "source": "api", **ALARM_RULES_EXAMPLE}]
        },
    )

    version: str = Field(description="Changes with any change of the rules (16 hex digits).")
    source: RuleSource = Field(description="Where the rules in force come from.")
    rules: list[AlarmRule]
    stale: list[StaleRule]

    @classmethod
    def of(cls, rule_set: AlarmRuleSet, source: RuleSource) -> AlarmRulesDocument:
        return cls(
            version=rule_set.version, source=source, rules=rule_set.rules, stale=rule_set.stale
        )


def describe_errors(errors: Sequence[ErrorDetails], data: Any) -> list[str]:
    """pydantic's errors of a rule set as ``rules[2] 'motor-hot': above: <reason>``, naming the
    rule by its position and (when it has one) its id; ``data`` is what was validated."""
    problems = []
    for error in errors:
        loc = list(error["loc"])
        if loc and loc[0] == "body":  # FastAPI's location of a request body
            loc = loc[1:]
        reason = str(error["msg"]).removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] in ("rules", "stale") and isinstance(loc[1], int):
            where = f"{loc[0]}[{loc[1]}]"
            rule_id = _rule_id(data, str(loc[0]), loc[1])
            if rule_id is not None:
                where += f" {rule_id!r}"
            fields = ".".join(str(part) for part in loc[2:])
            problems.append(f"{where}: {fields}: {reason}" if fields else f"{where}: {reason}")
        elif loc:
            problems.append(f"{'.'.join(str(part) for part in loc)}: {reason}")
        else:
            problems.append(reason)
    return problems


def _rule_id(data: Any, kind: str, index: int) -> str | None:
    if not isinstance(data, Mapping):
        return None
    items = data.get(kind)
    if not isinstance(items, list) or not 0 <= index < len(items):
        return None
    item = items[index]
    rule_id = item.get("id") if isinstance(item, Mapping) else None
    return rule_id if isinstance(rule_id, str) and len(rule_id) <= 64 else None

"""Which alarm transitions a fleet-wide alarm socket wants: severities, types, rules, a sensor
id prefix, each checked with a reason a client can act on."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass

from ev_api.params import parse_type_filter, split_list
from ev_schemas import Catalogue, Severity
from ev_schemas.alarm_rules import RULE_ID_PATTERN, SENSOR_PREFIX_PATTERN
from ev_storage import AlarmTransition

SEVERITIES: tuple[str, ...] = typing.get_args(Severity)
_RULE_ID = re.compile(RULE_ID_PATTERN)
_PREFIX = re.compile(SENSOR_PREFIX_PATTERN)


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    """None (or an empty prefix): no condition on that field."""

    severities: tuple[str, ...] | None = None
    sensor_types: tuple[str, ...] | None = None
    rules: tuple[str, ...] | None = None
    prefix: str = ""

    @classmethod
    def parse(
        cls,
        catalogue: Catalogue,
        *,
        severity: Iterable[str] | None = None,
        sensor_type: Iterable[str] | None = None,
        rule: Iterable[str] | None = None,
        prefix: str = "",
    ) -> AlarmFilter:
        """The filter the query names (lists repeated and/or comma-separated);
        :class:`ValueError` naming the parameter and the fault."""
        severities = split_list(severity)
        if severities is not None:
            unknown = [name for name in severities if name not in SEVERITIES]
            if unknown or not severities:
                raise ValueError(
                    f"unknown severity {_shown(unknown)}; one or more of {', '.join(SEVERITIES)}"
                )
        rules = split_list(rule)
        if rules is not None:
            bad = [name for name in rules if not _RULE_ID.fullmatch(name)]
            if bad or not rules:
                raise ValueError(
                    f"rule {_shown(bad)} is not a rule id: 1-64 of a-z, "
                    "0-9, '_', '.', '-', starting with a letter or digit"
                )
        if not _PREFIX.fullmatch(prefix):
            raise ValueError("prefix must be at most 64 letters, digits, '_', '-' or '.'")
        return cls(severities, parse_type_filter(sensor_type, catalogue), rules, prefix)

    def matches(self, transition: AlarmTransition) -> bool:
        return (
            transition.sensor_id.startswith(self.prefix)
            and (self.severities is None or transition.severity in self.severities)
            and (self.sensor_types is None or transition.sensor_type in self.sensor_types)
            and (self.rules is None or transition.rule_id in self.rules)
        )


def _shown(names: list[str]) -> str:
    return ", ".join(repr(name[:40]) for name in names) or "''"

"""Alarm rules as the write script takes them, and the transitions it returns (alarms.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ev_storage.errors import StorageError

TransitionKind = Literal["raised", "cleared", "revised", "retracted"]
_KINDS = ("raised", "cleared", "revised", "retracted")


class ScriptRule(Protocol):
    """What the write script needs of an alarm rule (``ev_schemas.AlarmRule`` has it)."""

    @property
    def id(self) -> str: ...

    @property
    def sensor_type(self) -> str: ...

    @property
    def sensor_prefix(self) -> str: ...

    @property
    def above(self) -> float | None: ...

    @property
    def below(self) -> float | None: ...

    @property
    def effective_clear_below(self) -> float | None: ...

    @property
    def effective_clear_above(self) -> float | None: ...

    @property
    def for_ms(self) -> int | None: ...

    @property
    def readings(self) -> int | None: ...

    @property
    def severity(self) -> str: ...


def rule_args(rule: ScriptRule) -> list[str]:
    """The 9 script arguments of one rule ('' where it has none; floats as repr: exact)."""

    def number(value: float | int | None) -> str:
        return "" if value is None else repr(value)

    return [
        rule.id,
        rule.sensor_type,
        number(rule.above),
        number(rule.below),
        number(rule.effective_clear_below),
        number(rule.effective_clear_above),
        number(rule.for_ms),
        number(rule.readings),
        rule.severity,
    ]


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """An alarm episode raised, cleared, revised (a late reading changed its times) or retracted
    (a late reading showed it never happened): measurement times in ms, ``at`` the server time
    (ms) of the store that made the transition."""

    kind: TransitionKind
    sensor_id: str
    sensor_type: str
    rule_id: str
    began_ms: int
    raised_ms: int
    cleared_ms: int | None
    severity: str
    at_ms: int

    @classmethod
    def parse(cls, sensor_id: str, raw: bytes | str) -> AlarmTransition:
        """One transition as the script returns it (``kind|type|rule|began|raised|cleared|
        severity|at``); :class:`StorageError` if it is not one."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        parts = text.split("|")
        try:
            kind, sensor_type, rule_id, began, raised, cleared, severity, at = parts
            if kind not in _KINDS:
                raise ValueError(kind)
            return cls(
                kind,  # type: ignore[arg-type]
                sensor_id,
                sensor_type,
                rule_id,
                int(began),
                int(raised),
                int(cleared) if cleared else None,
                severity,
                int(at),
            )
        except ValueError:
            raise StorageError(f"unexpected alarm transition {text[:200]!r}") from None


def applicable(rules: Sequence[ScriptRule], sensor_id: str) -> list[ScriptRule]:
    """The rules whose sensor prefix the sensor id starts with."""
    return [rule for rule in rules if sensor_id.startswith(rule.sensor_prefix)]

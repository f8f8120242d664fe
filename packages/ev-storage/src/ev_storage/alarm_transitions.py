"""Alarm rules as the write script takes them, and the transitions it returns (alarms.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ev_schemas import Alarm, AlarmEvent, from_epoch_ms
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
    (ms) of the store that made the transition, ``raised_at_ms`` and ``cleared_at_ms`` the
    episode's own processing times (None when a script older than 0.2 sent it without them)."""

    kind: TransitionKind
    sensor_id: str
    sensor_type: str
    rule_id: str
    began_ms: int
    raised_ms: int
    cleared_ms: int | None
    severity: str
    at_ms: int
    raised_at_ms: int | None = None
    cleared_at_ms: int | None = None

    @classmethod
    def parse(cls, sensor_id: str, raw: bytes | str) -> AlarmTransition:
        """One transition as the script returns and publishes it (``kind|type|rule|began|raised|
        cleared|severity|at|raised at|cleared at``, the last two optional); :class:`StorageError`
        if it is not one."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        parts = text.split("|")
        try:
            if len(parts) == 8:
                parts += ["", ""]
            kind, sensor_type, rule_id, began, raised, cleared, severity, at, r_at, c_at = parts
            if kind not in _KINDS:
                raise ValueError(kind)
            return cls(
                kind,  # type: ignore[arg-type]
                sensor_id,
                sensor_type,
                rule_id,
                int(began),
                int(raised),
                _optional_int(cleared),
                severity,
                int(at),
                _optional_int(r_at),
                _optional_int(c_at),
            )
        except ValueError:
            raise StorageError(f"unexpected alarm transition {text[:200]!r}") from None

    @property
    def alarm_id(self) -> str:
        """The episode's id, as ``GET /sensor/{id}/alarms`` shows it."""
        return f"{self.sensor_id}~{self.sensor_type}~{self.rule_id}~{self.began_ms}"

    def alarm(self) -> Alarm:
        """The episode as the API model, without its acknowledgement (not part of a transition);
        the processing times fall back to ``at`` when the script did not send them."""
        cleared_at = self.cleared_at_ms
        if cleared_at is None and self.cleared_ms is not None:
            cleared_at = self.at_ms
        return Alarm(
            alarm_id=self.alarm_id,
            sensor_id=self.sensor_id,
            sensor_type=self.sensor_type,
            rule_id=self.rule_id,
            severity=self.severity,  # validated by the model
            state="active" if self.cleared_ms is None else "cleared",
            began=from_epoch_ms(self.began_ms),
            raised=from_epoch_ms(self.raised_ms),
            cleared=None if self.cleared_ms is None else from_epoch_ms(self.cleared_ms),
            raised_at=from_epoch_ms(self.at_ms if self.raised_at_ms is None else self.raised_at_ms),
            cleared_at=None if cleared_at is None else from_epoch_ms(cleared_at),
        )

    def event(self) -> AlarmEvent:
        """The transition as pushed to live clients (the WebSockets)."""
        return AlarmEvent(kind=self.kind, at=from_epoch_ms(self.at_ms), alarm=self.alarm())


def _optional_int(text: str) -> int | None:
    return int(text) if text else None


def applicable(rules: Sequence[ScriptRule], sensor_id: str) -> list[ScriptRule]:
    """The rules whose sensor prefix the sensor id starts with."""
    return [rule for rule in rules if sensor_id.startswith(rule.sensor_prefix)]

"""Alarm episodes of one rule over one sensor type's readings, in measurement time.

The reference semantics (docs/alarms.md, "Semantics"): the readings are taken in timestamp
order, one per millisecond (the stored ones: the first value written wins), and a small state
machine walks them.

- *Inactive*: a reading that triggers the rule (``value > above`` or ``value < below``) starts or
  extends a *run* of consecutive triggering readings; any other reading ends the run. The run
  raises an episode at the first reading where it has lasted ``for`` (that reading's time minus
  the run's first) or counted ``readings`` readings (neither given: its first reading). The
  episode *began* at the run's first reading and was *raised* at that reading.
- *Active*: the episode lasts until the first reading that clears it (``value <= clear_below``
  and/or ``value >= clear_above``: the hysteresis band between the thresholds neither triggers
  nor clears); it *cleared* at that reading, and the state is inactive again, with no run.

So the episodes are a function of the set of readings: any delivery order, any duplication,
gives the same ones. The store keeps them incrementally (a reading older than the newest one
evaluated re-evaluates from a restart point before it); this module is the reference it is
tested against.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class EpisodeRule(Protocol):
    """What evaluation needs of a rule (``ev_schemas.AlarmRule`` has it)."""

    @property
    def for_ms(self) -> int | None: ...

    @property
    def readings(self) -> int | None: ...

    def triggers(self, value: float) -> bool: ...

    def clears(self, value: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class Episode:
    """One alarm episode: measurement times (ms) of the run's first reading (``began_ms``), of
    the reading that raised it and of the one that cleared it (None: still active)."""

    began_ms: int
    raised_ms: int
    cleared_ms: int | None = None


@dataclass(slots=True)
class EpisodeState:
    """Where the walk stands after a reading: an open run (first ms, count) or an active
    episode; both None: inactive with no run."""

    run_start: int | None = None
    run_count: int = 0
    active: Episode | None = None


def step(
    rule: EpisodeRule, state: EpisodeState, ms: int, value: float
) -> tuple[Episode | None, Episode | None]:
    """Walk one reading; the episode it raised and the one it cleared (each or both None)."""
    if state.active is not None:
        if rule.clears(value):
            cleared = Episode(state.active.began_ms, state.active.raised_ms, ms)
            state.active = None
            return None, cleared
        return None, None
    if not rule.triggers(value):
        state.run_start, state.run_count = None, 0
        return None, None
    if state.run_start is None:
        state.run_start = ms
    state.run_count += 1
    if _qualifies(rule, state.run_start, state.run_count, ms):
        raised = Episode(state.run_start, ms)
        state.active, state.run_start, state.run_count = raised, None, 0
        return raised, None
    return None, None


def _qualifies(rule: EpisodeRule, run_start: int, run_count: int, ms: int) -> bool:
    if rule.for_ms is not None:
        return ms - run_start >= rule.for_ms
    return run_count >= (rule.readings or 1)


def episodes(rule: EpisodeRule, readings: Iterable[tuple[int, float]]) -> list[Episode]:
    """Every episode of ``rule`` over ``readings`` ((ms, value), any order; for a repeated ms
    the first value counts, as in the store), oldest first."""
    first: dict[int, float] = {}
    for ms, value in readings:
        first.setdefault(ms, value)
    state = EpisodeState()
    found: list[Episode] = []
    for ms in sorted(first):
        raised, cleared = step(rule, state, ms, first[ms])
        if raised is not None:
            found.append(raised)
        if cleared is not None:
            found[-1] = cleared
    return found

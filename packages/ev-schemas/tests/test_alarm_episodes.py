"""The reference semantics of alarm episodes (``ev_schemas.alarm_episodes``)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from ev_schemas.alarm_episodes import Episode, episodes


@dataclass(frozen=True)
class Rule:
    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None
    for_ms: int | None = None
    readings: int | None = None

    def triggers(self, value: float) -> bool:
        return (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below
        )

    def clears(self, value: float) -> bool:
        high = self.above if self.clear_below is None else self.clear_below
        low = self.below if self.clear_above is None else self.clear_above
        return (high is None or value <= high) and (low is None or value >= low)


def _series(*values: float, step: int = 10) -> list[tuple[int, float]]:
    return [(n * step, value) for n, value in enumerate(values)]


def test_without_a_hold_the_first_triggering_reading_raises() -> None:
    rule = Rule(above=100)
    assert episodes(rule, _series(50, 101, 102, 100, 101)) == [
        Episode(10, 10, 30),  # 100 is not above 100: it clears
        Episode(40, 40, None),
    ]


def test_a_duration_hold_raises_when_the_run_has_lasted_it() -> None:
    rule = Rule(above=100, for_ms=20)
    # 101 at 10, 20, 30: lasted 20 ms at 30. A calm reading at 50 ends the run started at 40.
    assert episodes(rule, _series(50, 101, 101, 101, 101, 50, 101, 101)) == [Episode(10, 30, 50)]


def test_a_count_hold_raises_at_the_nth_reading_and_a_calm_one_resets_it() -> None:
    rule = Rule(below=10, readings=3)
    assert episodes(rule, _series(5, 5, 50, 5, 5, 5, 50)) == [Episode(30, 50, 60)]


def test_hysteresis_keeps_an_episode_active_in_the_band() -> None:
    rule = Rule(above=100, clear_below=90)
    assert episodes(rule, _series(101, 95, 99, 100, 90)) == [Episode(0, 0, 40)]


def test_a_band_rule_triggers_on_both_sides() -> None:
    rule = Rule(above=120, below=5, clear_below=110, clear_above=8)
    assert episodes(rule, _series(4, 7, 9, 121, 115, 100)) == [
        Episode(0, 0, 20),
        Episode(30, 30, 50),
    ]


def test_the_first_value_of_a_millisecond_counts() -> None:
    assert episodes(Rule(above=100), [(0, 50.0), (0, 150.0), (10, 150.0)]) == [
        Episode(10, 10, None)
    ]


rules = st.sampled_from(
    [
        Rule(above=100),
        Rule(above=100, clear_below=90, for_ms=30),
        Rule(below=10, clear_above=20, readings=3),
        Rule(above=120, below=5, clear_below=110, clear_above=8, for_ms=15),
    ]
)


@given(
    rules,
    st.lists(
        st.tuples(st.integers(0, 500), st.sampled_from([0.0, 7.0, 15.0, 95.0, 105.0, 125.0])),
        unique_by=lambda item: item[0],
        max_size=60,
    ),
    st.randoms(use_true_random=False),
    st.integers(0, 3),
)
def test_any_order_and_duplication_gives_the_same_episodes(
    rule: Rule, readings: list[tuple[int, float]], rng: random.Random, copies: int
) -> None:
    shuffled = readings * (copies + 1)
    rng.shuffle(shuffled)
    found = episodes(rule, shuffled)
    assert found == episodes(rule, sorted(readings))
    # Episodes are ordered, disjoint, and each began at or before it was raised and cleared.
    for one, two in itertools.pairwise(found):
        assert one.cleared_ms is not None
        assert one.cleared_ms < two.began_ms
    for episode in found:
        assert episode.began_ms <= episode.raised_ms
        assert episode.cleared_ms is None or episode.raised_ms < episode.cleared_ms

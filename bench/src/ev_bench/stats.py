"""Small statistics the harness reports: percentiles, medians, rates and ratios.

Pure functions so they can be tested without a broker; the harness never asserts on timings.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` (0..1) percentile by the nearest-rank method (a value that occurred).

    Nearest rank rather than interpolation: a p99 of 200 samples is then the 2nd largest
    sample, which a reader can check against the raw data.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Distribution:
    """p50, p99 and max of a set of samples (milliseconds in this harness), and how many."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        return cls(len(values), percentile(values, 0.5), percentile(values, 0.99), max(values))


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when nothing was timed."""
    return count / seconds if seconds > 0 else 0.0


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def median(values: Sequence[float]) -> float:
    """The median; the harness repeats the noisiest measurements and keeps this."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))

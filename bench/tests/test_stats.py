from __future__ import annotations

import pytest

from ev_bench.stats import Distribution, median, percentile, rate, ratio


def test_percentile_is_nearest_rank_of_a_sample() -> None:
    values = [float(v) for v in range(1, 201)]  # 1..200
    assert percentile(values, 0.5) == 100.0
    assert percentile(values, 0.99) == 198.0
    assert percentile(values, 1.0) == 200.0
    assert percentile(values, 0.0) == 1.0


def test_percentile_ignores_input_order() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_percentile_rejects_fraction_outside_0_1(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], fraction)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_distribution_of_samples() -> None:
    dist = Distribution.of([4.0, 1.0, 2.0, 3.0])
    assert (dist.count, dist.p50, dist.p99, dist.max) == (4, 2.0, 4.0, 4.0)


def test_rate_and_ratio_handle_missing_and_zero() -> None:
    assert rate(100, 2.0) == 50.0
    assert rate(100, 0.0) == 0.0
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(None, 4.0) is None
    assert ratio(1.0, 0.0) is None


def test_median() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0]) == 1.5

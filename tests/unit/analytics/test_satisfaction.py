"""CSAT, NPS, CES, expectation gap and the summary statistics used by the read models."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pytest

from crm_es.analytics.satisfaction import (
    ces_mean,
    ces_share_high,
    csat,
    gap_mean,
    gap_negative_share,
    median,
    nps,
    percentile,
    rate,
)


def answers(counts: dict[int, int]) -> list[int]:
    return [score for score, count in counts.items() for _ in range(count)]


def test_csat_counts_only_4_and_5_as_satisfied() -> None:
    assert csat(answers({5: 42, 4: 32, 3: 10, 2: 9, 1: 14})) == 69.16


def test_nps_of_each_answer_0_to_10_once_is_minus_45_45() -> None:
    assert nps(range(11)) == -45.45


def test_nps_of_100_promoters_30_passives_80_detractors_is_9_52() -> None:
    assert nps(answers({10: 60, 9: 40, 8: 20, 7: 10, 6: 50, 0: 30})) == 9.52


def test_nps_spans_minus_100_to_plus_100() -> None:
    assert nps([0, 6, 3]) == -100.0
    assert nps([9, 10]) == 100.0
    assert nps([7, 8]) == 0.0


def test_ces_reports_the_mean_and_the_share_of_5_to_7() -> None:
    scores = [7, 6, 5, 4, 1, 2]
    assert ces_mean(scores) == 4.17
    assert ces_share_high(scores) == 50.0


def test_gap_is_performance_minus_expectation() -> None:
    pairs = [(4.0, 3.0), (3.0, 5.0), (5.0, 5.0)]  # (expectation, performance): gaps -1, +2, 0
    assert gap_mean(pairs) == 0.33
    assert gap_negative_share(pairs) == 33.33
    assert gap_mean([(5.0, 2.0)]) == -3.0


@pytest.mark.parametrize(
    "metric",
    [csat, nps, ces_mean, ces_share_high, gap_mean, gap_negative_share, median],
    ids=lambda metric: metric.__name__,
)
def test_no_answers_give_none_not_zero(metric: Callable[[Iterable[object]], float | None]) -> None:
    assert metric([]) is None


@pytest.mark.parametrize(
    ("metric", "bad"),
    [(csat, 0), (csat, 6), (nps, -1), (nps, 11), (ces_mean, 0), (ces_share_high, 8)],
)
def test_answers_outside_the_scale_are_rejected(
    metric: Callable[[Iterable[int]], float | None], bad: int
) -> None:
    with pytest.raises(ValueError, match="outside its scale"):
        metric([3, bad])


def test_rounding_is_half_away_from_zero_on_the_exact_fraction() -> None:
    # 1 of 800 is exactly 0.125 %, where Python's round() would give 0.12 (ties to even).
    assert rate(1, 800) == 0.13
    assert nps([0] + [7] * 799) == -0.13
    assert rate(1, 3) == 33.33
    assert rate(2, 3) == 66.67


def test_rate_of_nothing_to_measure_is_none() -> None:
    assert rate(0, 0) is None
    assert rate(0, 5) == 0.0
    with pytest.raises(ValueError):
        rate(-1, 5)


def test_median_of_an_even_count_is_the_mean_of_the_middle_values() -> None:
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7.0, 1.0, 3.0]) == 3.0


def test_percentile_interpolates_linearly_like_numpy() -> None:
    values = list(np.random.default_rng(7).exponential(scale=36.0, size=101))
    for p in (0.0, 10.0, 50.0, 90.0, 99.5, 100.0):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)), rel=1e-12)
    assert percentile([1.0, 2.0, 3.0, 4.0], 90.0) == pytest.approx(3.7)
    assert percentile([], 90.0) is None


def test_percentile_rejects_p_outside_0_to_100() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101.0)

"""The maths of the drivers report, on hand-computed vectors: each metric's sentiment bands and
0–100 score, a complaint's outcome, grouped Pearson r, churn on a given day (explicit and by the
rule as it stood then), the priority and the ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.analytics.drivers import (
    answer_scores,
    answer_sentiments,
    churned_on,
    complaint_sentiments,
    customer_means,
    factor_figures,
    grouped_pearson,
    priorities,
    ranking,
)

D, N, S = 0, 1, 2  # dissatisfied, neutral, satisfied


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize(
    ("metric", "values", "codes"),
    [
        ("csat", range(1, 6), [D, D, N, S, S]),
        ("nps", range(11), [D] * 7 + [N] * 2 + [S] * 2),
        ("ces", range(1, 8), [D, D, D, N, S, S, S]),
        ("gap", (-6, -1, 0, 1, 6), [D, D, N, S, S]),
    ],
)
def test_each_metric_sorts_answers_into_dissatisfied_neutral_satisfied(
    metric: str, values: range | tuple[int, ...], codes: list[int]
) -> None:
    assert answer_sentiments(metric, ints(*values)).tolist() == codes


@pytest.mark.parametrize(
    ("metric", "values", "scores"),
    [
        ("csat", (1, 3, 4, 5), [0.0, 50.0, 75.0, 100.0]),
        ("nps", (0, 7, 10), [0.0, 70.0, 100.0]),
        ("ces", (1, 4, 7), [0.0, 50.0, 100.0]),
        ("gap", (-6, -3, 0, 3, 6), [0.0, 25.0, 50.0, 75.0, 100.0]),
    ],
)
def test_every_metric_lands_on_one_0_to_100_score(
    metric: str, values: tuple[int, ...], scores: list[float]
) -> None:
    assert answer_scores(metric, ints(*values)).tolist() == scores


@pytest.mark.parametrize(("metric", "value"), [("csat", 0), ("nps", 11), ("ces", 8), ("gap", 7)])
def test_a_value_off_the_standard_scale_is_an_error_not_a_score(metric: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{metric} value {value} is outside"):
        answer_sentiments(metric, ints(value))
    with pytest.raises(ValueError, match="no sentiment is defined for metric 'stars'"):
        answer_scores("stars", ints(3))


def test_a_complaint_is_dissatisfied_while_open_or_unsatisfied_at_follow_up() -> None:
    open_ = np.array([True, False, False, False, True])
    followed = ints(-1, -1, 0, 1, 1)  # none, none, not satisfied, satisfied, satisfied (reopened)
    assert complaint_sentiments(open_, followed).tolist() == [D, N, D, S, D]


def test_grouped_pearson_by_hand_and_none_without_enough_pairs_or_variance() -> None:
    group = ints(0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3)
    x = np.array([1, 2, 3, 1, 2, 5, 5, 5, 0.1, 0.1, 0.1])
    y = np.array([2, 4, 7, 1, 2, 1, 2, 3, 1, 2, 3.0])
    r, n = grouped_pearson(group, x, y, 5)
    # Group 0: dx = (-1, 0, 1), dy = (-7/3, -1/3, 8/3): r = 5 / sqrt(2 * 38/3) = 5 * sqrt(3/76).
    assert r[0] == pytest.approx(5 * math.sqrt(3 / 76), abs=1e-12)
    assert math.isnan(r[1]) and math.isnan(r[2]) and math.isnan(r[3]) and math.isnan(r[4])
    assert n.tolist() == [3, 2, 3, 3, 0]


def test_churned_on_a_day_explicitly_or_by_the_rule_as_it_stood_then() -> None:
    rule = ChurnRule(k=3.0, floor_days=40)
    # Customer 0 buys on days 0, 10, 20 (median gap 10: 3 x 10 < 40, so 40 silent days);
    # customer 1 once, on day 100; customer 2 on days 0, 100, 110.
    owner, days = ints(0, 0, 0, 1, 2, 2, 2), ints(0, 10, 20, 100, 0, 100, 110)
    # Customer 3 never buys: churned on day 50, won back on day 80.
    facts = (ints(3, 3), ints(50, 80), np.array([True, False]))
    asked = [
        (0, 15, False), (0, 60, False), (0, 61, True),  # 40 silent days is not more than 40
        (1, 50, False), (1, 140, False), (1, 141, True),  # before the first purchase: no
        (2, 90, True),  # day 0 alone: the floor, 40
        (2, 105, False),  # gaps (100): threshold 300
        (2, 270, False), (2, 400, True),  # gaps (100, 10), median 55: 165 silent days
        (3, 49, False), (3, 60, True), (3, 80, False), (3, 90, False),
    ]  # fmt: skip
    customers = ints(*(a[0] for a in asked))
    on_days = ints(*(a[1] for a in asked))
    got = churned_on(owner, days, facts, customers, on_days, rule)
    assert got.tolist() == [a[2] for a in asked]


def test_factor_figures_count_correlate_and_pair_customers() -> None:
    # Factor 0: customers 0, 1, 2 score 0, 75, 50/3; their overall scores 20, 90, 0.
    # Factor 1: customer 1 twice (50, 100): one pair only.
    factor = ints(0, 0, 0, 1, 1)
    customer = ints(0, 1, 2, 1, 1)
    score = np.array([0.0, 75.0, 50 / 3, 50.0, 100.0])
    sentiment = ints(D, S, D, N, S)
    overall = customer_means(ints(0, 1, 2), np.array([20.0, 90.0, 0.0]), 4)
    assert math.isnan(overall[3])
    known = np.array([True, True, True, True, False])
    churned = np.array([True, False, True, False, False])
    f = factor_figures(factor, customer, score, sentiment, 2, overall, known, churned)
    assert f.observations.tolist() == [3, 2] and f.customers.tolist() == [1 + 1 + 1, 1]
    assert f.sentiments.tolist() == [[2, 0, 1], [0, 1, 1]]
    assert f.mean_score[0] == pytest.approx(275 / 9) and f.mean_score[1] == 75.0
    # sxy = 30500/9, sxx = 83750/27, syy = 13400/3: r = 30500 / 33500 = 61/67.
    assert f.overall_r[0] == pytest.approx(61 / 67, abs=1e-12)
    assert f.overall_pairs.tolist() == [3, 1] and math.isnan(f.overall_r[1])
    # Churn: y = (1, 0, 1), sxy = -400/9, syy = 2/3: r = -400 / sqrt(167500).
    assert f.churn_r[0] == pytest.approx(-400 / math.sqrt(167500), abs=1e-12)
    assert f.churn_pairs.tolist() == [3, 1] and f.churned.tolist() == [2, 0]


def test_priority_weights_the_dissatisfied_share_by_both_correlations() -> None:
    got = priorities(
        np.array([0.5, 0.2, 0.4]), np.array([0.5, np.nan, -0.3]), np.array([-0.25, np.nan, 0.1])
    )
    assert got.tolist() == pytest.approx([0.5 * 1.75, 0.2, 0.4])


def test_ranking_puts_the_factor_to_fix_first_on_top() -> None:
    order = ranking(
        np.array([0.2, 0.4, 0.4, 0.875, 0.2]),
        ints(1, 2, 3, 1, 1),
        np.array([50.0, 40.0, 60.0, np.nan, 45.0]),
    )
    # 3 (highest priority); 2 before 1 (more dissatisfied); 4 before 0 (lower mean score).
    assert order.tolist() == [3, 2, 1, 4, 0]

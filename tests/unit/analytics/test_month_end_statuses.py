"""The churn rule's statuses at month ends from one set of purchase days: a hand-computed
vector, the latest explicit fact of a month end winning, and every month end of random
histories against a direct computation (cut the days at the end, median of the gaps, the rule).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from crm_es.analytics.churn_rule import STATUS_NAMES, churn_thresholds, rule_statuses
from crm_es.analytics.churn_settings import ChurnRule
from crm_es.analytics.cohorts import month_numbers
from crm_es.analytics.month_end_statuses import ExplicitChurns, month_end_statuses
from crm_es.domain.times import day_number

RULE = ChurnRule(k=1.0, floor_days=30, at_risk_share=0.5)


def d(text: str) -> int:
    return day_number(date.fromisoformat(text))


def names(codes: np.ndarray) -> list[str]:
    return [STATUS_NAMES[c] for c in codes.tolist()]


def test_statuses_at_each_month_end_by_hand() -> None:
    ends = np.array([d("2026-01-31"), d("2026-02-28"), d("2026-03-31"), d("2026-04-30")])
    days = {
        0: ["2026-01-05", "2026-01-20", "2026-03-01"],
        2: ["2026-02-10"],
        3: ["2026-01-30"],
        4: ["2026-05-03"],  # after the last end: never seen
    }
    owner = np.array([c for c, ds in days.items() for _ in ds])
    day = np.array([d(x) for ds in days.values() for x in ds])
    churns = ExplicitChurns(
        owner=np.array([1, 1, 3, 3, 3, 3]),
        seen_from=np.array([1, 2, 0, 0, 1, 1]),
        # customer 3: churned then won back by 31 January, won back then churned by 28 February
        churned=np.array([True, False, True, False, False, True]),
    )
    statuses = [names(s) for s in month_end_statuses(owner, day, 5, ends, RULE, churns)]
    by_customer = [[month[c] for month in statuses] for c in range(5)]
    assert by_customer == [
        # 31 Jan: gap 15, threshold max(15, 30) = 30, silent 11. 28 Feb: silent 39 > 30.
        # 31 Mar: gaps 15 and 40, median 27.5, threshold 30, silent 30 (not more): at risk
        # (more than 15). 30 Apr: silent 60.
        ["active", "churned", "at_risk", "churned"],
        # no purchase: churned explicitly from February, won back (a prospect again) in March
        ["prospect", "churned", "prospect", "prospect"],
        # one purchase day (the floor, 30): silent 18 > 15, then 49 > 30
        ["prospect", "at_risk", "churned", "churned"],
        # the latest fact by each end decides: a win-back in January, a churn in February
        ["active", "churned", "churned", "churned"],
        ["prospect"] * 4,
    ]


def direct(
    owner: np.ndarray, day: np.ndarray, n: int, end: int, j: int, churns: ExplicitChurns,
    rule: ChurnRule,
) -> np.ndarray:  # fmt: skip
    """The statuses at one end the way a load as of that end computes them."""
    count = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    median = np.full(n, np.nan)
    for c in range(n):
        mine = np.sort(day[(owner == c) & (day <= end)])
        count[c] = mine.size
        if mine.size:
            last[c] = mine[-1]
        if mine.size >= 2:
            median[c] = float(np.median(np.diff(mine)))
    explicit = np.zeros(n, dtype=bool)
    for c, seen, churned in zip(*churns, strict=True):
        if seen <= j:
            explicit[c] = churned  # in order: the last one seen wins
    return rule_statuses(count, last, churn_thresholds(count, median, rule), explicit, end, rule)


@pytest.mark.parametrize("seed", range(6))
def test_every_month_end_is_the_direct_computation_on_random_histories(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 150
    rule = ChurnRule(k=float(rng.choice([1.0, 1.5, 3.0])), floor_days=int(rng.integers(20, 90)),
                     at_risk_share=0.5)  # fmt: skip
    pairs = np.unique(
        rng.integers(0, n, 1500) * 1000 + np.minimum(rng.exponential(120, 1500), 999).astype(int)
    )
    owner, day = np.divmod(pairs, 1000)
    ends = np.cumsum(rng.integers(1, 60, 14)) + 30
    # A customer's facts together, in their order of time: their first end never falls.
    facts, seen = rng.integers(0, n, 60), rng.integers(0, ends.size + 1, 60)
    order = np.lexsort((seen, facts))
    churns = ExplicitChurns(facts[order], seen[order], rng.random(60) < 0.6)
    got = list(month_end_statuses(owner, day, n, ends, rule, churns))
    assert len(got) == ends.size
    for j, end in enumerate(ends.tolist()):
        assert got[j].tolist() == direct(owner, day, n, end, j, churns, rule).tolist(), j


def test_customers_without_a_purchase_day_or_a_fact_are_prospects() -> None:
    empty = np.zeros(0, dtype=np.int64)
    got = list(month_end_statuses(empty, empty, 3, np.array([10, 40]), RULE))
    assert [s.tolist() for s in got] == [[0, 0, 0], [0, 0, 0]]


def test_days_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted by customer, then day"):
        next(month_end_statuses(np.array([0, 0]), np.array([5, 3]), 1, np.array([10]), RULE))
    with pytest.raises(ValueError, match="ascending"):
        next(month_end_statuses(np.array([0]), np.array([5]), 1, np.array([10, 10]), RULE))


def test_month_numbers_of_many_days_are_those_of_each_day() -> None:
    """Over 1024 days within a shorter span, months come from a table of the span's days."""
    days = np.random.default_rng(3).integers(-800, 900, 5000)  # either side of 1970
    assert days.max() - days.min() < days.size
    each = [int(np.datetime64(int(x), "D").astype("datetime64[M]").astype(np.int64)) for x in days]
    assert month_numbers(days).tolist() == each

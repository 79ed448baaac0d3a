"""RFM quintile scores and segment maps (pure functions, no store)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest

from crm_es.analytics.rfm import (
    CN8_CLASSES,
    CN8_MAP_V1,
    CN8_THRESHOLD_RULE,
    RF_GRID_V1,
    RF_GRID_VERSION,
    RF_SEGMENTS,
    RfmInput,
    score_rfm,
)

AS_OF = date(2024, 6, 30)


def customer(cid: str, days_ago: int, purchase_days: int, spend: str) -> RfmInput:
    return RfmInput(
        customer_id=cid,
        last_purchase=AS_OF - timedelta(days=days_ago),
        purchase_days=purchase_days,
        net_spend=Decimal(spend),
    )


def test_every_rf_cell_maps_to_exactly_one_of_the_ten_segments() -> None:
    assert RF_GRID_VERSION == "rf-grid-v1"
    assert len(RF_SEGMENTS) == len(set(RF_SEGMENTS)) == 10
    assert set(RF_GRID_V1) == {(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert all(segment in RF_SEGMENTS for segment in RF_GRID_V1.values())
    assert set(RF_GRID_V1.values()) == set(RF_SEGMENTS)


def test_rf_grid_matches_the_published_table() -> None:
    published = {
        5: [
            "New Customers",
            "Potential Loyalists",
            "Potential Loyalists",
            "Champions",
            "Champions",
        ],
        4: ["Promising", "Potential Loyalists", "Potential Loyalists"] + ["Loyal Customers"] * 2,
        3: ["About To Sleep", "About To Sleep", "Need Attention"] + ["Loyal Customers"] * 2,
        2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
        1: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    }
    for r, row in published.items():
        assert [RF_GRID_V1[(r, f)] for f in range(1, 6)] == row


def test_cn8_map_gives_each_high_low_combination_its_own_class() -> None:
    assert len(CN8_MAP_V1) == 8
    assert sorted(CN8_MAP_V1.values()) == sorted(CN8_CLASSES)
    for (r_high, f_high, m_high), name in CN8_MAP_V1.items():
        assert name.startswith("重要" if m_high else "一般")
        rf = {
            (True, True): "价值",
            (False, True): "保持",
            (True, False): "发展",
            (False, False): "挽留",
        }
        assert name == name[:2] + rf[(r_high, f_high)] + "客户"


def test_each_chinese_class_is_reachable_in_a_constructed_population() -> None:
    # Two levels per dimension, four customers on each side: the median lies strictly between.
    rows = []
    expected = {}
    for r_high in (True, False):
        for f_high in (True, False):
            for m_high in (True, False):
                cid = f"c-{int(r_high)}{int(f_high)}{int(m_high)}"
                rows.append(
                    customer(
                        cid, 5 if r_high else 200, 6 if f_high else 1, "900" if m_high else "20"
                    )
                )
                expected[cid] = CN8_MAP_V1[(r_high, f_high, m_high)]
    scores = score_rfm(rows, AS_OF)
    assert {score.customer_id: score.segment_cn for score in scores} == expected
    assert {score.segment_cn for score in scores} == set(CN8_CLASSES)


def test_a_value_equal_to_the_median_counts_as_low() -> None:
    assert "equal to the median counts as low" in CN8_THRESHOLD_RULE
    rows = [customer("a", 5, 1, "10"), customer("b", 10, 2, "20"), customer("c", 20, 3, "30")]
    by_id = {score.customer_id: score for score in score_rfm(rows, AS_OF)}
    # Medians: 10 days, 2 purchase days, 20 spend; "b" sits exactly on all three.
    assert (by_id["b"].r_high, by_id["b"].f_high, by_id["b"].m_high) == (False, False, False)
    assert (by_id["a"].r_high, by_id["a"].f_high, by_id["a"].m_high) == (True, False, False)
    assert (by_id["c"].r_high, by_id["c"].f_high, by_id["c"].m_high) == (False, True, True)


def test_scores_are_quintiles_with_five_best_and_recency_inverted() -> None:
    rows = [customer(f"c{i:02d}", days_ago=i, purchase_days=i + 1, spend=str(i)) for i in range(10)]
    by_id = {score.customer_id: score for score in score_rfm(rows, AS_OF)}
    assert by_id["c00"].r == 5 and by_id["c09"].r == 1  # most recent is best
    assert by_id["c09"].f == 5 and by_id["c00"].f == 1
    assert by_id["c09"].m == 5 and by_id["c00"].m == 1
    for dimension in ("r", "f", "m"):
        counts = Counter(getattr(score, dimension) for score in by_id.values())
        assert counts == {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}


def test_tied_values_still_fill_five_equal_groups_ranked_by_customer_id() -> None:
    rows = [customer(f"c{i:02d}", days_ago=30, purchase_days=1, spend="50") for i in range(10)]
    scores = score_rfm(rows, AS_OF)
    assert [score.f for score in scores] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [score.r for score in scores] == [score.f for score in scores]


def test_quintile_ties_are_broken_the_same_way_whatever_the_input_order() -> None:
    rng = random.Random(20240630)
    rows = [
        customer(
            f"cust-{i:03d}",
            rng.choice([1, 7, 30]),
            rng.choice([1, 1, 2, 5]),
            str(rng.randint(1, 4)),
        )
        for i in range(97)
    ]
    reference = score_rfm(rows, AS_OF)
    for _ in range(5):
        shuffled = rows[:]
        rng.shuffle(shuffled)
        assert score_rfm(shuffled, AS_OF) == reference
    assert [score.customer_id for score in reference] == sorted(row.customer_id for row in rows)


def test_code_and_segment_follow_the_scores() -> None:
    rows = [
        customer(f"c{i}", days_ago=3 * i, purchase_days=10 - i, spend=str(7 * i)) for i in range(7)
    ]
    for score in score_rfm(rows, AS_OF):
        assert score.code == f"{score.r}{score.f}{score.m}"
        assert score.segment == RF_GRID_V1[(score.r, score.f)]
        assert score.segment_cn == CN8_MAP_V1[(score.r_high, score.f_high, score.m_high)]


def test_recency_counts_days_since_the_last_purchase_as_of_the_reference_date() -> None:
    [score] = score_rfm([customer("solo", days_ago=42, purchase_days=3, spend="12.50")], AS_OF)
    assert (score.recency_days, score.frequency, score.monetary) == (42, 3, Decimal("12.50"))


def test_an_empty_population_has_no_scores() -> None:
    assert score_rfm([], AS_OF) == []


def test_populations_smaller_than_five_skip_scores_without_failing() -> None:
    [only] = score_rfm([customer("solo", 1, 1, "1")], AS_OF)
    assert (only.r, only.f, only.m, only.segment, only.segment_cn) == (
        1,
        1,
        1,
        "Hibernating",
        "一般挽留客户",
    )
    pair = score_rfm([customer("a", 1, 1, "1"), customer("b", 2, 2, "2")], AS_OF)
    assert sorted(score.f for score in pair) == [1, 3]
    four = score_rfm([customer(str(i), i, i + 1, str(i)) for i in range(4)], AS_OF)
    assert sorted(score.m for score in four) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "rows",
    [
        [customer("a", 1, 1, "1"), customer("a", 2, 1, "1")],
        [customer("a", 1, 0, "0")],
        [customer("a", -1, 1, "1")],
    ],
    ids=["duplicate-id", "no-purchase", "purchase-after-reference-date"],
)
def test_inconsistent_input_is_rejected(rows: list[RfmInput]) -> None:
    with pytest.raises(ValueError):
        score_rfm(rows, AS_OF)

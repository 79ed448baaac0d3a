"""The vectorised RFM scores and purchase facts equal their per-customer definitions."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_es.analytics.churn_rule import (
    NO_RETURN,
    STATUS_NAMES,
    ChurnRule,
    churn_thresholds,
    rule_return_days,
    rule_statuses,
)
from crm_es.analytics.rfm import RfmInput, id_ranks, score_rfm, score_rfm_arrays
from crm_es.domain.times import day_number
from crm_es.reports.facts.purchase_arrays import (
    PurchaseFacts,
    _day_facts,
    _sum_by_owner,
    explicit_churned,
)
from crm_es.reports.facts.purchase_history import ChurnFacts, PurchaseHistory
from crm_es.reports.facts.purchase_scan import (
    _parse_days_slowly,
    amounts_of,
    match_fixed_width,
    parse_days,
)
from tests.helpers.report_oracles import churn_threshold_days, return_day, rule_status

AS_OF = date(2024, 6, 30)

customer_ids = st.lists(
    st.text(alphabet="abcAB-_09é", min_size=1, max_size=4), unique=True, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(
    ids=customer_ids,
    data=st.data(),
    huge=st.booleans(),
)
def test_vectorised_rfm_scores_equal_score_rfm(
    ids: list[str], data: st.DataObject, huge: bool
) -> None:
    n = len(ids)
    bound = 10**22 if huge else 10**6
    recency = data.draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    frequency = data.draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    spend = data.draw(st.lists(st.integers(-bound, bound), min_size=n, max_size=n))
    exponent = data.draw(st.sampled_from([0, 2, 3]))
    rows = [
        RfmInput(cid, AS_OF - timedelta(days=r), f, Decimal(s).scaleb(-exponent))
        for cid, r, f, s in zip(ids, recency, frequency, spend, strict=True)
    ]
    arrays = score_rfm_arrays(
        id_ranks(ids),
        np.array(recency, dtype=np.int64),
        np.array(frequency, dtype=np.int64),
        spend,
    )
    if not huge:  # spends also come as an int64 array
        as_array = score_rfm_arrays(
            id_ranks(ids),
            np.array(recency, dtype=np.int64),
            np.array(frequency, dtype=np.int64),
            np.array(spend, dtype=np.int64),
        )
        assert all(np.array_equal(a, b) for a, b in zip(as_array, arrays, strict=True))
    by_id = {score.customer_id: score for score in score_rfm(rows, AS_OF)}
    expected = [by_id[cid] for cid in ids]
    assert arrays.r.tolist() == [s.r for s in expected]
    assert arrays.f.tolist() == [s.f for s in expected]
    assert arrays.m.tolist() == [s.m for s in expected]
    assert arrays.r_high.tolist() == [s.r_high for s in expected]
    assert arrays.f_high.tolist() == [s.f_high for s in expected]
    assert arrays.m_high.tolist() == [s.m_high for s in expected]
    assert arrays.codes() == [s.code for s in expected]
    assert arrays.segments() == [s.segment for s in expected]
    assert arrays.segments_cn() == [s.segment_cn for s in expected]


def test_id_ranks_follow_python_string_order_whatever_the_input_order() -> None:
    ids = ["b", "a-1", "A", "a_1", "é", "a"]
    ranks = id_ranks(ids)
    assert [ids[i] for i in np.argsort(ranks)] == sorted(ids)
    assert id_ranks(sorted(ids)).tolist() == list(range(len(ids)))


day_lists = st.lists(
    st.lists(st.dates(date(1900, 1, 1), date(2100, 12, 31)), min_size=1, max_size=12),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(day_lists, st.sampled_from(["day", "week"]))
def test_day_facts_equal_the_per_customer_history(lists: list[list[date]], _: str) -> None:
    """Duplicated, unordered days per customer → distinct days, first/last, the churn rule."""
    text = ",".join(d.isoformat() for days in lists for d in days)
    days = parse_days(text)
    assert days.tolist() == ([] if not text else _parse_days_slowly(text).tolist())
    owners = np.repeat(np.arange(1, len(lists) + 1, dtype=np.int64), [len(d) for d in lists])
    facts = _day_facts(owners, days, len(lists) + 1)  # customer 0 has no purchase
    facts = facts._replace(net_spend=[0] * (len(lists) + 1))
    rule = ChurnRule(k=2.5, floor_days=30, at_risk_share=0.4)
    as_of = date(2101, 1, 1)
    thresholds = churn_thresholds(facts.purchase_days, facts.median_gap, rule)
    explicit = np.zeros(len(lists) + 1, dtype=bool)
    explicit[1::3] = True
    statuses = rule_statuses(
        facts.purchase_days, facts.last_day, thresholds, explicit, day_number(as_of), rule
    )
    assert facts.purchase_days[0] == 0 and STATUS_NAMES[statuses[0]] == "prospect"
    returned = rule_return_days(facts.day_owner, facts.day_of, rule, len(lists) + 1)
    assert returned[0] == NO_RETURN
    for i, raw in enumerate(lists, start=1):
        history = PurchaseHistory(days=sorted(set(raw)))
        churn = ChurnFacts(explicit_churned=True) if explicit[i] else None
        assert facts.purchase_days[i] == len(history.days)
        assert facts.first_day[i] == day_number(history.days[0])
        assert facts.last_day[i] == day_number(history.days[-1])
        assert thresholds[i] == churn_threshold_days(history.days, rule)
        assert STATUS_NAMES[statuses[i]] == rule_status(history, churn, as_of, rule)
        back = return_day(history, None, rule)
        assert returned[i] == (day_number(back) if back else NO_RETURN)


def test_statuses_cover_every_branch_of_the_rule() -> None:
    rule = ChurnRule()
    as_of = date(2024, 12, 31)
    rng = random.Random(7)
    histories = [
        sorted({as_of - timedelta(days=rng.randint(0, 900)) for _ in range(rng.randint(1, 6))})
        for _ in range(400)
    ]
    owners = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    days = np.array([day_number(d) for h in histories for d in h], dtype=np.int64)
    facts = _day_facts(owners.astype(np.int64), days, len(histories))
    churn = {
        "c0": ChurnFacts(explicit_churned=True),
        "c1": ChurnFacts(won_back_on=date(2024, 6, 1)),
    }
    ids = [f"c{i}" for i in range(len(histories))]
    explicit = explicit_churned(churn, ids)
    thresholds = churn_thresholds(facts.purchase_days, facts.median_gap, rule)
    statuses = rule_statuses(
        facts.purchase_days, facts.last_day, thresholds, explicit, day_number(as_of), rule
    )
    names = [STATUS_NAMES[s] for s in statuses.tolist()]
    expected = [
        rule_status(PurchaseHistory(days=h), churn.get(cid), as_of, rule)
        for cid, h in zip(ids, histories, strict=True)
    ]
    assert names == expected
    assert set(names) == {"active", "at_risk", "churned"}


def test_unexpected_day_text_takes_the_reference_parse() -> None:
    bad = ["2024-1-05,2024-01-06", "2024-01-05,2024-01-0x", "2024-02-30,2024-01-01"]
    bad += ["2023-02-29", "2024-13-01", "2024-00-10", "2024-04-31", "0000-01-01", "2024-01-05;"]
    for text in bad:
        with pytest.raises(ValueError):
            parse_days(text)
    assert parse_days("2024-01-05,0001-01-01").tolist() == [19727, -719162]  # > 400 years
    edge = ["9999-12-31", "9999-01-01", "9998-02-28", "2024-02-29", "2000-02-29", "1900-02-28"]
    for text in edge:
        assert parse_days(text).tolist() == [day_number(date.fromisoformat(text))]
    assert parse_days("9999-12-31,9999-12-30,9999-12-31").tolist() == [2932896, 2932895, 2932896]


def test_sums_are_exact_beyond_int64() -> None:
    owner = np.array([0, 1, 0, -1, 1], dtype=np.int64)
    small = [5, 7, -2, 100, 1]
    huge = [2**62, 2**62, 2**62, 1, -(2**63)]
    for amounts in (small, huge):
        sums = _sum_by_owner(owner, np.array(amounts, dtype=np.int64), owner >= 0, 3)
        assert sums == [amounts[0] + amounts[2], amounts[1] + amounts[4], 0]


def test_amounts_come_as_int64_bytes_or_json() -> None:
    values = [0, 1, -1, 2**63 - 1, -(2**63), 90_000]
    as_bytes = b"".join(v.to_bytes(8, "big", signed=True) for v in values)
    assert amounts_of(as_bytes).tolist() == values
    assert amounts_of(msgspec.json.encode(values).decode()).tolist() == values
    assert amounts_of(None).tolist() == [] == amounts_of(b"").tolist()


def test_no_purchases_gives_empty_facts() -> None:
    days = parse_days("")
    facts = _day_facts(np.zeros(0, dtype=np.int64), days, 3)
    assert isinstance(facts, PurchaseFacts)
    assert facts.purchase_days.tolist() == [0, 0, 0]
    assert np.isnan(facts.median_gap).all()


def test_fixed_width_ids_match_exactly_or_step_aside() -> None:
    ids = ["cc", "aa", "bb", "d", "ée"]
    assert match_fixed_width("bbzzccbb", 2, 4, ids).tolist() == [2, -1, 0, 2]
    assert match_fixed_width("", 0, 0, ids).tolist() == []
    assert match_fixed_width("bbzzccbb", 2, 4, ["x", "yyy"]).tolist() == [-1] * 4
    assert match_fixed_width("bbzzccbb", 2, 4, []).tolist() == [-1] * 4
    assert match_fixed_width("bbzzccbb", 2, 4, ["zz", "bb"]).tolist() == [1, 0, -1, 1]
    assert match_fixed_width("bbd", 2, 2, ids) is None  # widths differ: "bb", "d"
    assert match_fixed_width("ééaa", 2, 2, ids) is None  # not ASCII


def test_fixed_width_ids_step_aside_on_a_hash_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    import crm_es.reports.facts.purchase_scan as scan

    monkeypatch.setattr(scan, "_id_hashes", lambda words: np.zeros(len(words[0]), np.uint64))
    assert match_fixed_width("aabb", 2, 2, ["aa", "bb"]) is None
    # One candidate: a hash hit that is another id is still no match.
    assert match_fixed_width("aabb", 2, 2, ["aa"]).tolist() == [0, -1]


def _python_rounded(values: list[float]) -> list[str]:
    return [str(round(v, 6)) if np.isfinite(v) else "None" for v in values]


def test_rounded_figures_keep_python_round_and_signs() -> None:
    from crm_es.reports.churn import _rounded

    values = [0.1234565, -0.0, 0.0, float("nan"), float("inf"), 2.5e-7, 0.1234565, 1 / 3, -5e-7]
    values += [0.0000005, 0.0000015, 1.0000005, 2.675e-6, 123456.7890125, 1e9 + 0.5, 1e300, 5e-324]
    values += [k / 1e6 + 5e-7 for k in range(-2000, 2000, 7)]  # near the half-way points
    rng = random.Random(3)
    values += [rng.random() * 10 ** rng.randint(-8, 12) * rng.choice([-1, 1]) for _ in range(5000)]
    assert [str(v) for v in _rounded(np.array(values))] == _python_rounded(values)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_rounded_equals_python_round_on_any_float(values: list[float]) -> None:
    from crm_es.reports.churn import _rounded

    assert [str(v) for v in _rounded(np.array(values, dtype=np.float64))] == _python_rounded(values)


@pytest.mark.parametrize("width", [3, 8, 13, 36])
def test_fixed_width_ids_match_like_a_dict_on_many_ids(width: int) -> None:
    rng = random.Random(width)
    ids = sorted({"".join(rng.choices("abcdef0123456789", k=width)) for _ in range(3000)})
    index = {cid: i for i, cid in enumerate(ids)}
    # Strangers: unknown ids, and ids differing from a known one in the first or last byte only.
    strangers = ["".join(rng.choices("ghij", k=width)) for _ in range(50)]
    strangers += ["x" + cid[1:] for cid in ids[:20]] + [cid[:-1] + "x" for cid in ids[:20]]
    rows = [rng.choice(ids) for _ in range(20000)] + strangers
    rng.shuffle(rows)
    matched = match_fixed_width("".join(rows), width, len(rows), [*ids, "short", "ünïcod"])
    assert matched is not None
    assert matched.tolist() == [index.get(cid, -1) for cid in rows]

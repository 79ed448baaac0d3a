"""The drivers report end to end on hand-computed vectors: commands → events → feedback and
customers read models → report, on SQLite and on PostgreSQL.

The scenario (as of 2026-06-30, churn within 90 days, the default rule: 270 silent days for a
customer of one purchase day or short gaps):

========  ==============================================  =================================
customer  purchases / churn                               answers (topic) and complaints
========  ==============================================  =================================
C-1       2025-01-10 only: churned by the rule 2025-10-08  2025-08-01 csat 1 delivery; nps 2
                                                          (overall); complaint delivery
                                                          2025-07-20, left open
C-2       2025-01-10, 03-10, 05-10, 12-01, 2026-05-01      2025-08-01 csat 4 delivery; nps 9;
                                                          2026-05-01 csat 3 price (too young
                                                          for churn); complaint billing
                                                          2025-06-01, satisfied at follow-up
C-3       2025-06-01; CustomerChurned 2025-07-15          2025-07-01 ces 2 delivery; nps 0
C-4       2026-01-01                                      2026-01-05 csat 5 price, nps 10 and
                                                          csat 4 (overall); 2026-02-01 gap
                                                          5 → 4 price; a CES on 1–5 about
                                                          delivery (off scale); complaint
                                                          billing 2026-06-01, resolved
========  ==============================================  =================================

Scores (0–100): delivery 0 (C-1), 75 (C-2), (2 − 1)/6 = 50/3 (C-3); price 50 (C-2), 100 and
50 − 50/6 = 125/3 (C-4); complaints: open 0, satisfied 100, resolved without follow-up 50.
Overall means: C-1 20, C-2 90, C-3 0, C-4 (100 + 75)/2 = 87.5.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from crm_es import CRM
from crm_es.analytics.churn_rule import ChurnRule
from crm_es.projections import ProjectionEngine, read_models
from crm_es.reports.api import Reports
from crm_es.reports.drivers import DriverFactor, DriversReport, drivers_report, table_rows
from crm_es.reports.query import ReportQuery
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store

AS_OF = "2026-06-30"
RECORDED = datetime(2026, 7, 1, tzinfo=UTC)
LATE = datetime(2026, 8, 1, tzinfo=UTC)


def at(day: str) -> str:
    return f"{day}T10:00:00+00:00"


def build(crm: CRM, clock: Clock) -> None:
    for ref in ("C-1", "C-2", "C-3", "C-4"):
        crm.register_customer(external_ref=ref, occurred_at=at("2025-01-01"))
    buys = {
        "C-1": ["2025-01-10"],
        "C-2": ["2025-01-10", "2025-03-10", "2025-05-10", "2025-12-01", "2026-05-01"],
        "C-3": ["2025-06-01"],
        "C-4": ["2026-01-01"],
    }
    for ref, days in buys.items():
        for n, day in enumerate(days):
            crm.record_purchase(customer=ref, order_id=f"O-{n}", amount="10.00",
                                currency="CNY", occurred_at=at(day))  # fmt: skip
    crm.churn_customer(customer="C-3", churn_reason="moved", occurred_at=at("2025-07-15"))

    def answer(ref: str, survey: str, day: str, metric: str, **fields: Any) -> None:
        crm.answer_survey(customer=ref, survey_id=survey, metric=metric, occurred_at=at(day),
                          **fields)  # fmt: skip

    answer("C-1", "S-1", "2025-08-01", "csat", score=1, topic="delivery")
    answer("C-1", "S-2", "2025-08-01", "nps", score=2)
    answer("C-2", "S-1", "2025-08-01", "csat", score=4, topic="delivery")
    answer("C-2", "S-2", "2025-08-01", "nps", score=9)
    answer("C-2", "S-3", "2026-05-01", "csat", score=3, topic="price")
    answer("C-3", "S-1", "2025-07-01", "ces", score=2, topic="delivery")
    answer("C-3", "S-2", "2025-07-01", "nps", score=0)
    answer("C-4", "S-1", "2026-01-05", "csat", score=5, topic="price")
    answer("C-4", "S-2", "2026-01-05", "nps", score=10)
    answer("C-4", "S-3", "2026-01-05", "csat", score=4)
    answer("C-4", "S-4", "2026-02-01", "gap", expectation=5, performance=4, topic="price")
    answer("C-4", "S-5", "2026-02-01", "ces", score=2, scale_min=1, scale_max=5, topic="delivery")
    crm.file_complaint(customer="C-1", complaint_id="K-1", category="delivery", severity="low",
                       occurred_at=at("2025-07-20"))  # fmt: skip
    crm.file_complaint(customer="C-2", complaint_id="K-2", category="billing", severity="low",
                       occurred_at=at("2025-06-01"))  # fmt: skip
    crm.resolve_complaint(customer="C-2", complaint_id="K-2", resolution="refunded",
                          occurred_at=at("2025-06-02"))  # fmt: skip
    crm.follow_up_complaint(customer="C-2", complaint_id="K-2", satisfied=True,
                            occurred_at=at("2025-06-03"))  # fmt: skip
    crm.file_complaint(customer="C-4", complaint_id="K-3", category="billing", severity="low",
                       occurred_at=at("2026-06-01"))  # fmt: skip
    crm.resolve_complaint(customer="C-4", complaint_id="K-3", resolution="explained",
                          occurred_at=at("2026-06-02"))  # fmt: skip
    # Learned a month after the rest: only a report known at a later time counts it.
    clock.now = LATE
    answer("C-4", "S-6", "2026-01-10", "csat", score=1, topic="service_attitude")


def report_of(crm: CRM, **options: Any) -> DriversReport:
    engine = ProjectionEngine(crm, read_models())
    try:
        engine.catch_up_all()
        with engine.db.reading() as tx:
            tables = engine.all_active_tables(tx)
            query = ReportQuery.at(as_of=options.pop("as_of", AS_OF),
                                   known_at=options.pop("known_at", None))  # fmt: skip
            return drivers_report(tx, tables, query, **options)
    finally:
        engine.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CRM]:
    with module_store(request, tmp_path_factory) as url:
        clock = Clock(RECORDED)
        with CRM(url, clock=clock) as crm:
            build(crm, clock)
            yield crm


def by_name(report: DriversReport) -> dict[tuple[str, str], DriverFactor]:
    return {(f.source, f.factor): f for f in report.factors}


def test_the_factors_are_ranked_with_hand_computed_figures(store: CRM) -> None:
    report = report_of(store, known_at="2026-07-15")
    assert [(f.rank, f.source, f.factor) for f in report.factors] == [
        (1, "survey_topic", "delivery"),
        (2, "complaint_category", "delivery"),
        (3, "survey_topic", "price"),
        (4, "complaint_category", "billing"),
    ]
    assert (report.topic_answers, report.overall_answers) == (6, 5)
    assert (report.off_scale_answers, report.complaints) == (1, 3)
    delivery, complaint, price, billing = report.factors
    assert delivery.label == "物流配送" and complaint.label is None
    assert (delivery.observations, delivery.customers) == (3, 3)
    assert (delivery.dissatisfied, delivery.neutral, delivery.satisfied) == (2, 0, 1)
    assert (delivery.dissatisfied_share, delivery.neutral_share) == (66.67, 0.0)
    assert delivery.satisfied_share == 33.33
    assert delivery.mean_score == 30.56  # (0 + 75 + 50/3) / 3 = 275/9
    # sxy = 30500/9, sxx = 83750/27, syy = 13400/3: r = 30500/33500 = 61/67.
    assert (delivery.overall_r, delivery.overall_pairs) == (0.9104, 3)
    # Churned 90 days on: C-1 (by the rule), C-3 (explicitly), not C-2; r = -400/sqrt(167500).
    assert (delivery.churn_r, delivery.churn_pairs, delivery.churned) == (-0.9774, 3, 2)
    assert delivery.churn_rate == 66.67
    assert delivery.priority == 1.9252  # 2/3 x (1 + 61/67 + 0.97736)

    assert (complaint.observations, complaint.dissatisfied, complaint.mean_score) == (1, 1, 0.0)
    assert (complaint.overall_r, complaint.overall_pairs) == (None, 1)
    assert (complaint.churn_r, complaint.churn_pairs, complaint.churned) == (None, 1, 1)
    assert (complaint.churn_rate, complaint.priority) == (100.0, 1.0)

    assert (price.observations, price.customers) == (3, 2)
    assert (price.dissatisfied, price.neutral, price.satisfied) == (1, 1, 1)
    assert price.mean_score == 63.89  # (50 + 100 + 125/3) / 3
    assert (price.overall_r, price.overall_pairs) == (None, 2)
    # C-2's answer is younger than 90 days; C-4's two were not followed by churn.
    assert (price.churn_r, price.churn_pairs, price.churned) == (None, 2, 0)
    assert price.priority == 0.3333

    assert (billing.observations, billing.customers) == (2, 2)
    assert (billing.dissatisfied, billing.neutral, billing.satisfied) == (0, 1, 1)
    assert (billing.mean_score, billing.churn_pairs, billing.churned) == (75.0, 1, 0)
    assert billing.priority == 0.0


def test_what_was_recorded_later_counts_only_for_a_later_knowledge_time(store: CRM) -> None:
    before = by_name(report_of(store, known_at="2026-07-15"))
    after = by_name(report_of(store))
    assert ("survey_topic", "service_attitude") not in before
    late = after[("survey_topic", "service_attitude")]
    assert (late.observations, late.dissatisfied, late.label) == (1, 1, "服务态度")
    assert after[("survey_topic", "delivery")] == before[("survey_topic", "delivery")]


def test_as_of_an_earlier_date_counts_only_what_had_occurred(store: CRM) -> None:
    report = report_of(store, as_of="2025-12-31", known_at="2026-07-15")
    found = by_name(report)
    assert set(found) == {("survey_topic", "delivery"), ("complaint_category", "delivery"),
                          ("complaint_category", "billing")}  # fmt: skip
    assert found[("survey_topic", "delivery")].observations == 3
    # 90 days before 2025-12-31 is 2025-10-02: all three delivery answers have an outcome.
    assert found[("survey_topic", "delivery")].churn_pairs == 3


def test_the_churn_window_and_rule_are_the_callers(store: CRM) -> None:
    # 30 days after 2025-08-01 C-1 is not churned yet (the rule needs 270 silent days).
    short = by_name(report_of(store, known_at="2026-07-15", churn_days=30))
    assert short[("survey_topic", "delivery")].churned == 1  # C-3, churned explicitly
    lenient = ChurnRule(k=3.0, floor_days=400)
    late = by_name(report_of(store, known_at="2026-07-15", rule=lenient))
    assert late[("survey_topic", "delivery")].churned == 1  # C-1 not churned by day 293


def test_the_api_and_the_table_rows_give_the_same_report(store: CRM) -> None:
    with Reports(store) as reports:
        api = reports.drivers(as_of=AS_OF, known_at="2026-07-15")
    assert api == report_of(store, known_at="2026-07-15")
    rows = table_rows(api)
    assert list(rows[0])[:4] == ["rank", "factor", "label", "source"]
    assert [r["factor"] for r in rows] == ["delivery", "delivery", "price", "billing"]
    assert api.churn_days == 90 and set(api.definitions) >= {"priority", "churn_r"}

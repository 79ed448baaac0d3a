"""The satisfaction report end to end: commands → event store → read models → report.

Every test runs on SQLite and on PostgreSQL. Business times are back-dated into 2025–2026 and every
report is asked ``as_of`` an explicit date, so the figures do not depend on today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from crm_es import CRM
from crm_es.projections import ProjectionEngine, read_models
from crm_es.reports.query import ReportQuery
from crm_es.reports.satisfaction import SatisfactionReport, satisfaction_report, table_rows
from crm_es.reports.segments import segments_report
from tests.helpers.stores import module_store

R = TypeVar("R")
REGISTERED = "2025-01-01T00:00:00+00:00"


def run_report(
    crm: CRM, report: Callable[..., R], as_of: str, known_at: str | None = None, **kw: Any
) -> R:
    engine = ProjectionEngine(crm, read_models())
    try:
        engine.catch_up_all()
        with engine.db.reading() as tx:
            tables = engine.all_active_tables(tx)
            return report(tx, tables, ReportQuery.at(as_of=as_of, known_at=known_at), **kw)
    finally:
        engine.close()


def at(day: str, time: str = "00:00") -> str:
    return f"{day}T{time}:00+00:00"


def test_csat_nps_ces_and_gap_vectors_come_out_right_through_the_store(store_url: str) -> None:
    csat_counts = {5: 42, 4: 32, 3: 10, 2: 9, 1: 14}
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", owner="staff:li", occurred_at=REGISTERED)
        survey = 0

        def answer(**fields: Any) -> None:
            nonlocal survey
            survey += 1
            crm.answer_survey(
                customer="C-1", survey_id=f"S-{survey}", occurred_at=at("2026-01-05"), **fields
            )

        for score, count in csat_counts.items():
            for _ in range(count):
                answer(metric="csat", score=score)
        for score in range(11):
            answer(metric="nps", score=score)
        for score in (7, 5, 2):
            answer(metric="ces", score=score)
        answer(metric="ces", score=1, scale_min=1, scale_max=5)  # CES 1.0: lower is better
        answer(metric="gap", expectation=6, performance=5)
        answer(metric="gap", expectation=4, performance=6)
        report = run_report(crm, satisfaction_report, as_of="2026-06-30")

    overall = report.overall
    assert overall.responses == 107 + 11 + 3 + 1 + 2
    assert (overall.csat_answers, overall.nps_answers, overall.ces_answers) == (107, 11, 3)
    assert (overall.gap_answers, overall.off_scale_answers) == (2, 1)
    assert overall.csat == 69.16
    assert overall.nps == -45.45
    assert (overall.ces_mean, overall.ces_share_high) == (4.67, 66.67)  # the 1–5 answer is left out
    assert (overall.gap_mean, overall.gap_negative_share) == (0.5, 50.0)
    assert [b.key for b in report.by_month] == ["2026-01"]
    assert report.by_month[0].csat == 69.16
    assert report.complaints.filed == 0
    assert report.complaints.sla_breach_rate is None


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def breakdown(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SatisfactionReport, str]]:
    """The report of 30 June 2026 on C-A (staff:li, a buyer) and C-B (unowned, never bought),
    with C-A's segment as the segments report gives it on the same date."""
    with module_store(request, tmp_path_factory) as store_url:
        with CRM(store_url) as crm:
            crm.register_customer(external_ref="C-A", owner="staff:li", occurred_at=REGISTERED)
            crm.register_customer(external_ref="C-B", occurred_at=REGISTERED)
            crm.record_purchase(
                customer="C-A", order_id="O-1", amount="100.00", currency="CNY",
                occurred_at=at("2026-01-02"),
            )  # fmt: skip
            crm.answer_survey(
                customer="C-A", survey_id="S-1", metric="csat", score=5, channel="wechat",
                occurred_at=at("2026-01-10"),
            )  # fmt: skip
            crm.answer_survey(
                customer="C-A",
                survey_id="S-2",
                metric="csat",
                score=2,
                occurred_at=at("2026-02-10"),
            )
            crm.answer_survey(
                customer="C-B", survey_id="S-1", metric="nps", score=10, channel="email",
                occurred_at=at("2026-02-11"),
            )  # fmt: skip
            crm.answer_survey(
                customer="C-B", survey_id="S-2", metric="nps", score=0, channel="email",
                occurred_at=at("2026-03-01"),
            )  # fmt: skip
            crm.file_complaint(
                customer="C-A", complaint_id="K-1", category="delivery", severity="low",
                channel="phone", occurred_at=at("2026-02-20"),
            )  # fmt: skip
            report = run_report(crm, satisfaction_report, as_of="2026-06-30")
            segments = run_report(crm, segments_report, as_of="2026-06-30")
            segment_a = next(c.segment for c in segments.customers if c.external_ref == "C-A")
            assert segment_a is not None

        yield report, segment_a


def figures(rows: list[Any]) -> dict[str, tuple[int, float | None, float | None]]:
    return {b.key: (b.responses, b.csat, b.nps) for b in rows}


def test_figures_are_broken_down_by_month(breakdown: tuple[SatisfactionReport, str]) -> None:
    report, _ = breakdown
    assert figures(report.by_month) == {
        "2026-01": (1, 100.0, None),
        "2026-02": (2, 0.0, 100.0),
        "2026-03": (1, None, -100.0),
    }


def test_figures_are_broken_down_by_the_segment_of_the_same_date(
    breakdown: tuple[SatisfactionReport, str],
) -> None:
    report, segment_a = breakdown
    assert figures(report.by_segment) == {
        "(no purchase)": (2, None, 0.0),
        segment_a: (2, 50.0, None),
    }
    assert [b.key for b in report.complaints_by_segment] == [segment_a]


def test_figures_are_broken_down_by_owner(breakdown: tuple[SatisfactionReport, str]) -> None:
    report, _ = breakdown
    assert figures(report.by_owner) == {"(unassigned)": (2, None, 0.0), "staff:li": (2, 50.0, None)}


def test_figures_are_broken_down_by_channel(breakdown: tuple[SatisfactionReport, str]) -> None:
    report, _ = breakdown
    assert figures(report.by_channel) == {
        "(unknown)": (1, 0.0, None),
        "email": (2, None, 0.0),
        "wechat": (1, 100.0, None),
    }
    assert [(b.key, b.filed, b.open) for b in report.complaints_by_channel] == [("phone", 1, 1)]


def test_table_rows_hold_surveys_and_complaints_side_by_side(
    breakdown: tuple[SatisfactionReport, str],
) -> None:
    rows = table_rows(breakdown[0])
    assert rows[0]["dimension"] == "overall"
    assert (rows[0]["responses"], rows[0]["filed"]) == (4, 1)
    by_key = {(r["dimension"], r["key"]): r for r in rows}
    assert list(rows[0])[:2] == ["dimension", "key"]
    assert all(list(r) == list(rows[0]) for r in rows)  # same columns in the same order
    feb = by_key[("month", "2026-02")]
    assert (feb["responses"], feb["csat"], feb["filed"], feb["open"]) == (2, 0.0, 1, 1)
    phone = by_key[("channel", "phone")]  # complaints only: survey side is empty
    assert (phone["responses"], phone["csat"], phone["filed"]) == (0, None, 1)
    assert [r["dimension"] for r in rows] == (
        ["overall"] + ["month"] * 3 + ["segment"] * 2 + ["owner"] * 2 + ["channel"] * 4
    )


def test_as_of_and_known_at_leave_out_facts_that_occurred_or_were_recorded_later(
    store_url: str,
) -> None:
    def clock(day: str) -> Callable[[], datetime]:
        return lambda: datetime.fromisoformat(day).replace(tzinfo=UTC)

    with CRM(store_url, clock=clock("2026-03-01")) as early:
        early.register_customer(external_ref="C-1", occurred_at=REGISTERED)
        early.answer_survey(
            customer="C-1", survey_id="S-1", metric="csat", score=5, occurred_at=at("2026-02-01")
        )
        early.file_complaint(
            customer="C-1", complaint_id="K-1", category="billing", severity="low",
            occurred_at=at("2026-02-02"),
        )  # fmt: skip
    with CRM(store_url, clock=clock("2026-05-01")) as late:
        # Learned on 1 May, but it happened on 10 February (a back-dated import).
        late.answer_survey(
            customer="C-1", survey_id="S-2", metric="csat", score=1, occurred_at=at("2026-02-10")
        )
        late.resolve_complaint(
            customer="C-1", complaint_id="K-1", resolution="refunded",
            occurred_at=at("2026-02-03"),
        )  # fmt: skip
        late.file_complaint(
            customer="C-1", complaint_id="K-2", category="billing", severity="low",
            occurred_at=at("2026-04-01"),
        )  # fmt: skip

        everything = run_report(late, satisfaction_report, as_of="2026-06-30")
        known_in_march = run_report(
            late, satisfaction_report, as_of="2026-06-30", known_at="2026-03-31"
        )
        as_of_feb_5 = run_report(late, satisfaction_report, as_of="2026-02-05")

    assert (everything.overall.responses, everything.overall.csat) == (2, 50.0)
    assert (everything.complaints.filed, everything.complaints.open) == (2, 1)
    assert (known_in_march.overall.responses, known_in_march.overall.csat) == (1, 100.0)
    assert (known_in_march.complaints.filed, known_in_march.complaints.open) == (1, 1)
    assert known_in_march.known_at == "2026-03-31T23:59:59.999999Z"
    assert (as_of_feb_5.overall.responses, as_of_feb_5.overall.csat) == (1, 100.0)
    assert (as_of_feb_5.complaints.filed, as_of_feb_5.complaints.open) == (1, 0)
    assert as_of_feb_5.complaints.resolution_hours_median == 24.0
    assert as_of_feb_5.as_of == "2026-02-05T23:59:59.999999Z"


def _file_resolve_reopen_follow_up(crm: CRM) -> None:
    """Five complaints filed Jan–Feb 2026 (SLA: critical 4 h, high 24 h, medium 72 h, low 168 h).

    K-1 high, resolved after 10 h, follow-up satisfied.
    K-2 medium, resolved after 24 h, follow-up unhappy, reopened, resolved again after 96 h in all
        (past its SLA due 15 Jan), follow-up satisfied: the last follow-up counts.
    K-3 critical, still open: past its SLA.
    K-4 low, resolved after 36 h, follow-up unhappy, reopened: open and past its SLA.
    K-5 low, resolved after 24 h. K-6 is filed after as_of.
    """
    c = "C-1"
    crm.register_customer(external_ref=c, owner="staff:li", occurred_at=REGISTERED)

    def file(k: str, severity: str, when: str, channel: str | None = None) -> None:
        crm.file_complaint(
            customer=c, complaint_id=k, category="service", severity=severity, channel=channel,
            occurred_at=when,
        )  # fmt: skip

    def resolve(k: str, when: str) -> None:
        crm.resolve_complaint(customer=c, complaint_id=k, resolution="fixed", occurred_at=when)

    def follow_up(k: str, satisfied: bool, when: str) -> None:
        crm.follow_up_complaint(customer=c, complaint_id=k, satisfied=satisfied, occurred_at=when)

    file("K-1", "high", at("2026-01-10"), "phone")
    resolve("K-1", at("2026-01-10", "10:00"))
    follow_up("K-1", True, at("2026-01-11"))
    file("K-2", "medium", at("2026-01-12"), "phone")
    resolve("K-2", at("2026-01-13"))
    follow_up("K-2", False, at("2026-01-13", "12:00"))
    crm.reopen_complaint(customer=c, complaint_id="K-2", occurred_at=at("2026-01-14"))
    resolve("K-2", at("2026-01-16"))
    follow_up("K-2", True, at("2026-01-16", "12:00"))
    file("K-3", "critical", at("2026-02-01"), "wechat")
    file("K-4", "low", at("2026-02-02"))
    resolve("K-4", at("2026-02-03", "12:00"))
    follow_up("K-4", False, at("2026-02-03", "13:00"))
    crm.reopen_complaint(customer=c, complaint_id="K-4", occurred_at=at("2026-02-04"))
    file("K-5", "low", at("2026-02-05"))
    resolve("K-5", at("2026-02-06"))
    file("K-6", "low", at("2026-07-05"))


def test_complaint_figures_fold_each_complaint_to_the_cut(store_url: str) -> None:
    with CRM(store_url) as crm:
        _file_resolve_reopen_follow_up(crm)
        report = run_report(crm, satisfaction_report, as_of="2026-06-30")
        mid_january = run_report(crm, satisfaction_report, as_of=at("2026-01-14", "12:00"))

    c = report.complaints
    assert (c.filed, c.open, c.resolved) == (5, 2, 3)
    assert c.resolution_hours_median == 24.0  # of 10, 24, 96 hours
    assert c.resolution_hours_p90 == 81.6  # 24 + 0.8 × (96 − 24)
    assert c.sla_breach_rate == 60.0  # K-2 resolved late, K-3 and K-4 open past due: 3 of 5
    assert c.reopen_rate == 50.0  # K-2 and K-4 of the 4 ever resolved
    assert c.followup_satisfaction_rate == 66.67  # K-1 yes, K-2 yes (last), K-4 no

    months = {b.key: b for b in report.complaints_by_month}
    assert list(months) == ["2026-01", "2026-02"]
    jan, feb = months["2026-01"], months["2026-02"]
    assert (jan.filed, jan.open, jan.resolution_hours_median) == (2, 0, 53.0)
    assert (jan.sla_breach_rate, jan.reopen_rate, jan.followup_satisfaction_rate) == (
        50.0, 50.0, 100.0,
    )  # fmt: skip
    assert (feb.filed, feb.open, feb.resolution_hours_median) == (3, 2, 24.0)
    assert (feb.sla_breach_rate, feb.reopen_rate, feb.followup_satisfaction_rate) == (
        66.67, 50.0, 0.0,
    )  # fmt: skip
    assert [(b.key, b.filed) for b in report.complaints_by_channel] == [
        ("(unknown)", 2), ("phone", 2), ("wechat", 1),
    ]  # fmt: skip
    assert [(b.key, b.filed) for b in report.complaints_by_owner] == [("staff:li", 5)]
    assert [(b.key, b.filed) for b in report.complaints_by_segment] == [("(no purchase)", 5)]

    # On 14 January at noon K-2 has just been reopened, and its SLA (15 January) is not yet past.
    m = mid_january.complaints
    assert (m.filed, m.open, m.resolved) == (2, 1, 1)
    assert (m.resolution_hours_median, m.resolution_hours_p90) == (10.0, 10.0)
    assert (m.sla_breach_rate, m.reopen_rate, m.followup_satisfaction_rate) == (0.0, 50.0, 50.0)


def test_a_report_with_no_facts_has_no_figures_rather_than_zeros(store_url: str) -> None:
    with CRM(store_url) as crm:
        crm.register_customer(external_ref="C-1", occurred_at=REGISTERED)
        report: SatisfactionReport = run_report(crm, satisfaction_report, as_of="2026-06-30")
    assert report.overall.responses == 0
    assert report.overall.csat is None and report.overall.nps is None
    assert report.complaints.resolution_hours_median is None
    assert report.by_month == [] and report.complaints_by_owner == []
    assert [r["dimension"] for r in table_rows(report)] == ["overall"]

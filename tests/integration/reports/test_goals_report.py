"""The goals report end to end on SQLite and PostgreSQL: every figure computed by hand for six
goals over three customers, as of 31 May known on 1 June, known on 20 June (after a back-dated
revision and survey answer were recorded), and as of 20 March (before the periods began).

The scenario (every time 10:00 UTC; recorded when it occurred unless said otherwise). Every goal
runs 2026-04-01 … 2026-06-29 (90 days), so its baseline window is 2026-01-01 … 2026-03-31; on
31 May 61 of its 90 days are gone (67.78 %).

====================  ==========================================================================
2026-01-01            C-1 (staff:li, 华东), C-2 (staff:wang, 华南), C-3 (no owner, 华东)
2026-01-05 / 02-05    OP-0 of C-1 opened / lost
2026-02-01            C-1 buys O-1 100.00 CNY
2026-02-10            C-1 answers CSAT 5
2026-03-01            C-3 buys O-2 500.00 CNY; the six goals are set
2026-03-10            OP-1 of C-1 opened
2026-03-15            C-2 answers CSAT 2
2026-04-01            OP-2 of C-2 opened; care tasks T-1 (due 04-10) and T-2 (due 04-12) for C-2
2026-04-02            OP-3 of C-3 opened; K-1 of C-1 filed (high: due in 24 h), never resolved
2026-04-03            K-2 of C-1 filed (high), resolved two hours later
2026-04-05 / 04-06    C-1 buys O-3 300.00; C-2 buys O-4 999.00
2026-04-09 / 04-15    T-1 completed (on time) / T-2 completed (late)
2026-04-10            C-1 answers CSAT 4
2026-04-20 / 04-25    OP-1 won / OP-2 lost
2026-05-01            C-3 answers CSAT 5
2026-05-05            OP-3 won
2026-05-10            C-3 buys O-5 200.00
2026-05-15            C-1 gets 50.00 of O-3 refunded
2026-05-20            C-2 answers CSAT 1
2026-05-25            C-2 churned (explicitly)
2026-06-05            goal G-LATER set (after the report's date)
2026-06-10            C-1 answers CSAT 1 (after the report's date)
2026-05-02            C-3 answers CSAT 1 — recorded on 2026-06-15
2026-03-02            G-CSAT's target revised to 95 — recorded on 2026-06-15
====================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
import pytest

from crm_es import CRM
from crm_es.reports import Reports
from crm_es.reports.goals import GoalsReport, table_rows
from tests.helpers.clock import Clock
from tests.helpers.stores import module_store

PERIOD = {"starts_on": "2026-04-01", "ends_on": "2026-06-29", "owner": "user:zhou"}


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def reports(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, GoalsReport]]:
    with module_store(request, tmp_path_factory) as url:
        clock = Clock(at("2026-01-01"))
        with CRM(url, clock=clock) as crm:
            _populate(crm, clock)
            clock.now = at("2026-06-12")
            with Reports(crm) as r:
                found = {"known 1 June": r.goals(as_of="2026-05-31", known_at="2026-06-01")}
            _back_dated(crm, clock)
            clock.now = at("2026-06-20")
            with Reports(crm) as r:
                found["known 1 June, asked later"] = r.goals(
                    as_of="2026-05-31", known_at="2026-06-01"
                )
                found["known 20 June"] = r.goals(as_of="2026-05-31", known_at="2026-06-20")
                found["20 March"] = r.goals(as_of="2026-03-20", known_at="2026-06-20")
        yield found


def _populate(crm: CRM, clock: Clock) -> None:
    def on(day: str, hour: int = 10) -> str:
        clock.now = at(day, hour)
        return clock.now.isoformat()

    for ref, owner, region in [("C-1", "staff:li", "华东"), ("C-2", "staff:wang", "华南"),
                               ("C-3", None, "华东")]:  # fmt: skip
        crm.register_customer(external_ref=ref, owner=owner, region=region,
                              occurred_at=on("2026-01-01"))  # fmt: skip

    def deal(customer: str, oid: str, opened: str, closed: str, won: bool) -> None:
        crm.open_opportunity(customer=customer, opportunity_id=oid, title="deal", amount="10.00",
                             currency="CNY", occurred_at=on(opened))  # fmt: skip
        if won:
            crm.win_opportunity(customer=customer, opportunity_id=oid, occurred_at=on(closed))
        else:
            crm.lose_opportunity(customer=customer, opportunity_id=oid, lost_reason="price",
                                 occurred_at=on(closed))  # fmt: skip

    def buy(customer: str, order: str, amount: str, day: str) -> None:
        crm.record_purchase(customer=customer, order_id=order, amount=amount, currency="CNY",
                            occurred_at=on(day))  # fmt: skip

    def csat(customer: str, survey: str, score: int, day: str) -> None:
        crm.answer_survey(customer=customer, survey_id=survey, metric="csat", score=score,
                          occurred_at=on(day))  # fmt: skip

    deal("C-1", "OP-0", "2026-01-05", "2026-02-05", won=False)
    buy("C-1", "O-1", "100.00", "2026-02-01")
    csat("C-1", "S-1", 5, "2026-02-10")
    buy("C-3", "O-2", "500.00", "2026-03-01")
    set_on = on("2026-03-01", 12)
    for goal_id, fields in [
        ("G-CARE", {"metric": "care_tasks_on_time", "scope": "owner", "scope_value": "staff:wang",
                    "target": "90"}),
        ("G-CSAT", {"metric": "csat", "target": "90"}),
        ("G-RET", {"metric": "retention", "target": "80"}),
        ("G-REV-EAST", {"metric": "revenue", "scope": "region", "scope_value": "华东",
                        "target": "1000.00", "currency": "CNY"}),
        ("G-SLA-LI", {"metric": "complaint_sla_breach_rate", "scope": "owner",
                      "scope_value": "staff:li", "target": "10"}),
        ("G-WIN", {"metric": "win_rate", "target": "50"}),
    ]:  # fmt: skip
        crm.set_goal(goal_id=goal_id, occurred_at=set_on, **PERIOD, **fields)
    crm.open_opportunity(customer="C-1", opportunity_id="OP-1", title="deal", amount="10.00",
                         currency="CNY", occurred_at=on("2026-03-10"))  # fmt: skip
    csat("C-2", "S-2", 2, "2026-03-15")
    crm.open_opportunity(customer="C-2", opportunity_id="OP-2", title="deal", amount="10.00",
                         currency="CNY", occurred_at=on("2026-04-01"))  # fmt: skip
    for task, due in (("T-1", "2026-04-10"), ("T-2", "2026-04-12")):
        crm.schedule_care_task(customer="C-2", task_id=task, kind="check_in", due_on=due,
                               occurred_at=on("2026-04-01"))  # fmt: skip
    crm.open_opportunity(customer="C-3", opportunity_id="OP-3", title="deal", amount="10.00",
                         currency="CNY", occurred_at=on("2026-04-02"))  # fmt: skip
    crm.file_complaint(customer="C-1", complaint_id="K-1", category="delivery", severity="high",
                       occurred_at=on("2026-04-02"))  # fmt: skip
    crm.file_complaint(customer="C-1", complaint_id="K-2", category="delivery", severity="high",
                       occurred_at=on("2026-04-03"))  # fmt: skip
    crm.resolve_complaint(customer="C-1", complaint_id="K-2", resolution="fixed",
                          occurred_at=on("2026-04-03", 12))  # fmt: skip
    buy("C-1", "O-3", "300.00", "2026-04-05")
    buy("C-2", "O-4", "999.00", "2026-04-06")
    crm.complete_care_task(customer="C-2", task_id="T-1", occurred_at=on("2026-04-09"))
    csat("C-1", "S-3", 4, "2026-04-10")
    crm.complete_care_task(customer="C-2", task_id="T-2", occurred_at=on("2026-04-15"))
    crm.win_opportunity(customer="C-1", opportunity_id="OP-1", occurred_at=on("2026-04-20"))
    crm.lose_opportunity(customer="C-2", opportunity_id="OP-2", lost_reason="price",
                         occurred_at=on("2026-04-25"))  # fmt: skip
    csat("C-3", "S-4", 5, "2026-05-01")
    crm.win_opportunity(customer="C-3", opportunity_id="OP-3", occurred_at=on("2026-05-05"))
    buy("C-3", "O-5", "200.00", "2026-05-10")
    crm.refund_purchase(customer="C-1", order_id="O-3", amount="50.00", currency="CNY",
                        occurred_at=on("2026-05-15"))  # fmt: skip
    csat("C-2", "S-5", 1, "2026-05-20")
    crm.churn_customer(customer="C-2", churn_reason="moved", occurred_at=on("2026-05-25"))
    crm.set_goal(goal_id="G-LATER", metric="nps", target="-5", occurred_at=on("2026-06-05"),
                 **PERIOD)  # fmt: skip
    csat("C-1", "S-6", 1, "2026-06-10")


def _back_dated(crm: CRM, clock: Clock) -> None:
    """Recorded on 15 June, dated in the past: the report known on 1 June must not move."""
    clock.now = at("2026-06-15")
    crm.answer_survey(customer="C-3", survey_id="S-7", metric="csat", score=1,
                      occurred_at=at("2026-05-02").isoformat())  # fmt: skip
    crm.revise_goal(goal_id="G-CSAT", target="95", occurred_at=at("2026-03-02").isoformat())


def figures(report: GoalsReport) -> dict[str, tuple[Any, ...]]:
    return {
        g.goal_id: (g.target, g.baseline, g.value, g.elapsed, g.path, g.on_track)
        for g in report.goals
    }


def test_each_goal_as_known_on_1_june(reports: dict[str, GoalsReport]) -> None:
    """By hand (61 of 90 days gone):

    - G-CARE: staff:wang's tasks completed in the period: T-1 on time, T-2 late → 50.00; no
      baseline (none completed before) → the path is the target itself;
    - G-CSAT: baseline 5, 2 → 1 of 2 satisfied = 50.00; period 4, 5, 1 → 66.67; path
      50 + 40 × 61/90 = 77.11;
    - G-RET: buyers on 31 March C-1, C-3, none churned → 100.00; on 31 May C-1, C-2, C-3 with
      C-2 churned → 66.67; path 100 − 20 × 61/90 = 86.44;
    - G-REV-EAST: 华东 (C-1, C-3) before: 100 + 500 = 600.00; in the period 300 − 50 + 200 =
      450.00 (C-2's 999.00 is 华南); path 1000 × 61/90 = 677.78;
    - G-SLA-LI: staff:li's complaints filed in the period: K-1 open past its due time, K-2
      resolved in time → 50.00, none before; lower is better: 50 > 10, off track;
    - G-WIN: before OP-0 lost → 0.00; in the period OP-1, OP-3 won, OP-2 lost → 66.67; path
      50 × 61/90 = 33.89: on track.
    """
    report = reports["known 1 June"]
    assert (report.as_of, report.known_at, report.reference_date) == (
        "2026-05-31T23:59:59.999999Z", "2026-06-01T23:59:59.999999Z", "2026-05-31",
    )  # fmt: skip
    assert figures(report) == {
        "G-CARE": ("90", None, "50.00", "67.78", "90.00", False),
        "G-CSAT": ("90", "50.00", "66.67", "67.78", "77.11", False),
        "G-RET": ("80", "100.00", "66.67", "67.78", "86.44", False),
        "G-REV-EAST": ("1000.00", "600.00", "450.00", "67.78", "677.78", False),
        "G-SLA-LI": ("10", None, "50.00", "67.78", "10.00", False),
        "G-WIN": ("50", "0.00", "66.67", "67.78", "33.89", True),
    }
    sla = next(g for g in report.goals if g.goal_id == "G-SLA-LI")
    assert (sla.better, sla.scope, sla.scope_value, sla.status) == (
        "lower", "owner", "staff:li", "open",
    )  # fmt: skip


def test_a_back_dated_revision_and_answer_leave_the_report_for_a_past_known_at_unchanged(
    reports: dict[str, GoalsReport],
) -> None:
    assert reports["known 1 June, asked later"] == reports["known 1 June"]


def test_known_later_the_revised_target_and_the_late_answer_count(
    reports: dict[str, GoalsReport],
) -> None:
    """G-CSAT: target 95 since 2 March; the period's answers 4, 5, 1, 1 → 50.00; path
    50 + 45 × 61/90 = 80.50. G-LATER, set on 5 June, is not in a report of 31 May."""
    later = figures(reports["known 20 June"])
    assert later["G-CSAT"] == ("95", "50.00", "50.00", "67.78", "80.50", False)
    assert {k: v for k, v in later.items() if k != "G-CSAT"} == {
        k: v for k, v in figures(reports["known 1 June"]).items() if k != "G-CSAT"
    }


def test_before_its_period_a_goal_has_a_baseline_so_far_and_nothing_to_be_on_track_with(
    reports: dict[str, GoalsReport],
) -> None:
    """As of 20 March: the baseline window up to then (CSAT 5 and 2 → 50.00; 华东 revenue
    600.00), no value, no path, nothing gone."""
    early = figures(reports["20 March"])
    assert early["G-CSAT"] == ("95", "50.00", None, "0.00", None, None)
    assert early["G-REV-EAST"] == ("1000.00", "600.00", None, "0.00", None, None)
    assert early["G-WIN"] == ("50", "0.00", None, "0.00", None, None)


def test_table_rows_are_one_per_goal_with_every_figure(reports: dict[str, GoalsReport]) -> None:
    rows = table_rows(reports["known 1 June"])
    assert [r["goal_id"] for r in rows] == [
        "G-CARE", "G-CSAT", "G-RET", "G-REV-EAST", "G-SLA-LI", "G-WIN",
    ]  # fmt: skip
    assert rows[3]["currency"] == "CNY" and rows[3]["scope_value"] == "华东"


def test_the_html_section_lists_every_goal_and_charts_the_progress_of_those_with_a_start(
    reports: dict[str, GoalsReport],
) -> None:
    """Progress needs a value and a start: G-CSAT (66.67 − 50) / (90 − 50), G-RET, G-REV-EAST
    (450 of 1000) and G-WIN; G-CARE and G-SLA-LI have no baseline: 4 goals, two bars each."""
    from crm_es.reports.html.goals_section import progress, render_goals

    report = reports["known 1 June"]
    html = render_goals(report, "2026-05-31", 12)
    assert "<h2>12. Goals of the plan</h2>" in html and 'data-points="8"' in html
    assert [str(round(p)) if (p := progress(g)) is not None else None for g in report.goals] == [
        None, "42", "167", "45", None, "133",
    ]  # fmt: skip
    assert "<td>revenue, region 华东</td>" in html and "<td>on track</td>" in html
    empty = msgspec.structs.replace(report, goals=[])
    assert "No goals set yet as of 2026-05-31." in render_goals(empty, "2026-05-31", 12)

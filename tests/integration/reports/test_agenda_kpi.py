"""The care agenda and the staff KPI reports end to end, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, TypeVar

import pytest

from crm_es import CRM
from crm_es.projections import ProjectionEngine, read_models
from crm_es.reports import agenda, kpi
from crm_es.reports.agenda import AgendaReport, agenda_report, next_birthday
from crm_es.reports.kpi import KpiReport, OwnerKpi, kpi_report
from crm_es.reports.query import ReportQuery
from tests.helpers.stores import module_store

R = TypeVar("R")
REGISTERED = "2025-01-01T00:00:00+00:00"


def run_report(crm: CRM, report: Callable[..., R], as_of: str, **kw: Any) -> R:
    engine = ProjectionEngine(crm, read_models())
    try:
        engine.catch_up_all()
        with engine.db.reading() as tx:
            tables = engine.all_active_tables(tx)
            return report(tx, tables, ReportQuery.at(as_of=as_of), **kw)
    finally:
        engine.close()


def at(day: str, time: str = "00:00") -> str:
    return f"{day}T{time}:00+00:00"


@pytest.mark.parametrize(
    ("month_day", "reference", "expected"),
    [
        ("12-30", "2025-12-25", "2025-12-30"),
        ("01-03", "2025-12-25", "2026-01-03"),  # wraps into next year
        ("12-24", "2025-12-25", "2026-12-24"),  # just passed: next year's
        ("12-25", "2025-12-25", "2025-12-25"),  # today counts
        ("02-29", "2027-02-20", "2027-02-28"),  # non-leap year: 28 February
        ("02-29", "2027-03-01", "2028-02-29"),
        ("02-29", "2028-01-10", "2028-02-29"),
    ],
)
def test_the_next_birthday_wraps_the_year_and_moves_29_february_to_the_28th(
    month_day: str, reference: str, expected: str
) -> None:
    assert next_birthday(month_day, date.fromisoformat(reference)) == date.fromisoformat(expected)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def agenda_on_25_december(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgendaReport]:
    """The agenda of 25 December 2025 for four customers of staff:li (and one registered
    later), with tasks due, overdue, done, cancelled and beyond reach, and three complaints."""
    with module_store(request, tmp_path_factory) as store_url:
        with CRM(store_url) as crm:
            for ref, birthday in [("C-1", "1990-12-30"), ("C-2", "1985-01-03"), ("C-3", "1990-01-10"),
                                  ("C-4", "1990-12-24")]:  # fmt: skip
                crm.register_customer(
                    external_ref=ref, owner="staff:li", birthday=birthday, occurred_at=REGISTERED
                )
            # Registered after as_of: its birthday is not on the agenda yet.
            crm.register_customer(
                external_ref="C-5", birthday="1990-12-28", occurred_at=at("2026-03-01")
            )
            planned = at("2025-12-01")

            def schedule(task: str, due: str, customer: str = "C-1") -> None:
                crm.schedule_care_task(
                    customer=customer, task_id=task, kind="return_visit", due_on=due,
                    staff="staff:li", occurred_at=planned,
                )  # fmt: skip

            schedule("T-1", "2025-12-30")  # due
            schedule("T-2", "2025-12-20", "C-2")  # overdue by 5 days
            schedule("T-3", "2025-12-27")
            crm.complete_care_task(customer="C-1", task_id="T-3", occurred_at=at("2025-12-24"))
            schedule("T-4", "2025-12-20")
            crm.cancel_care_task(customer="C-1", task_id="T-4", occurred_at=at("2025-12-21"))
            schedule("T-5", "2026-01-20")  # beyond the 14 days
            schedule("T-6", "2025-12-26")  # completed after as_of: still due as of 25 December
            crm.complete_care_task(customer="C-1", task_id="T-6", occurred_at=at("2025-12-26"))
            schedule("T-7", "2025-12-25")  # due today

            # SLA due 21 December: past; SLA due 1 January: not yet.
            crm.file_complaint(
                customer="C-2", complaint_id="K-1", category="delivery", severity="high",
                occurred_at=at("2025-12-20"),
            )  # fmt: skip
            crm.file_complaint(
                customer="C-2", complaint_id="K-2", category="delivery", severity="low",
                occurred_at=at("2025-12-25", "10:00"),
            )  # fmt: skip
            crm.file_complaint(
                customer="C-3", complaint_id="K-3", category="billing", severity="critical",
                occurred_at=at("2025-12-01"),
            )  # fmt: skip
            crm.resolve_complaint(
                customer="C-3", complaint_id="K-3", resolution="fixed", occurred_at=at("2025-12-02")
            )
            report = run_report(crm, agenda_report, as_of="2025-12-25")

        yield report


def test_the_agenda_is_of_its_reference_date(agenda_on_25_december: AgendaReport) -> None:
    assert agenda_on_25_december.reference_date == "2025-12-25"


def test_tasks_due_within_14_days_are_listed_by_due_date(
    agenda_on_25_december: AgendaReport,
) -> None:
    """Done or cancelled ones are not; one completed after the date still is; today counts."""
    report = agenda_on_25_december
    assert [(t.task_id, t.due_on, t.days_overdue) for t in report.care_tasks_due] == [
        ("T-7", "2025-12-25", None), ("T-6", "2025-12-26", None), ("T-1", "2025-12-30", None),
    ]  # fmt: skip
    assert report.counts.care_tasks_due == 3


def test_overdue_tasks_say_how_late_they_are_and_whose_they_are(
    agenda_on_25_december: AgendaReport,
) -> None:
    overdue = agenda_on_25_december.care_tasks_overdue
    assert [(t.external_ref, t.task_id, t.days_overdue) for t in overdue] == [("C-2", "T-2", 5)]
    assert (overdue[0].owner, overdue[0].staff, overdue[0].care_kind) == (
        "staff:li", "staff:li", "return_visit",
    )  # fmt: skip
    assert agenda_on_25_december.counts.care_tasks_overdue == 1


def test_birthdays_ahead_are_of_customers_registered_by_the_date(
    agenda_on_25_december: AgendaReport,
) -> None:
    report = agenda_on_25_december
    assert [(b.external_ref, b.date, b.days_until) for b in report.birthdays] == [
        ("C-1", "2025-12-30", 5), ("C-2", "2026-01-03", 9),
    ]  # fmt: skip
    assert report.counts.birthdays == 2


def test_complaints_past_sla_count_hours_to_the_end_of_the_day(
    agenda_on_25_december: AgendaReport,
) -> None:
    past = agenda_on_25_december.complaints_past_sla
    assert [(c.external_ref, c.complaint_id, c.severity) for c in past] == [("C-2", "K-1", "high")]
    assert past[0].sla_due == "2025-12-21T00:00:00+00:00"  # in the store's zone (UTC here)
    assert past[0].hours_overdue == 120.0  # to the end of 25 December
    assert agenda_on_25_december.counts.complaints_past_sla == 1


def test_agenda_rows_share_columns_and_come_in_section_order(
    agenda_on_25_december: AgendaReport,
) -> None:
    rows = agenda.table_rows(agenda_on_25_december)
    assert [r["section"] for r in rows] == (
        ["care_task_overdue"] + ["care_task_due"] * 3 + ["birthday"] * 2 + ["complaint_past_sla"]
    )
    assert all(list(r) == list(rows[0]) for r in rows)
    assert (rows[4]["external_ref"], rows[4]["date"], rows[4]["task_id"]) == (
        "C-1",
        "2025-12-30",
        None,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def kpis_on_30_june(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KpiReport]:
    """KPIs of 30 June 2026: staff:li owns C-1, C-2 (and C-4, registered later), staff:wang
    owns C-3, C-5 has no owner; purchases, a refund, surveys, complaints and care tasks."""
    with module_store(request, tmp_path_factory) as store_url:
        with CRM(store_url) as crm:
            for ref, owner in [("C-1", "staff:li"), ("C-2", "staff:li"), ("C-3", "staff:wang"),
                               ("C-5", None)]:  # fmt: skip
                crm.register_customer(external_ref=ref, owner=owner, occurred_at=REGISTERED)
            crm.register_customer(
                external_ref="C-4", owner="staff:li", occurred_at=at("2026-08-01")
            )

            def buy(
                customer: str, order: str, amount: str, when: str, currency: str = "CNY"
            ) -> None:
                crm.record_purchase(
                    customer=customer, order_id=order, amount=amount, currency=currency,
                    occurred_at=when,
                )  # fmt: skip

            buy("C-1", "O-1", "100.00", at("2026-01-05"))
            buy("C-2", "O-2", "50.50", at("2026-02-01"))
            crm.refund_purchase(
                customer="C-2", order_id="O-2", amount="10.00", occurred_at=at("2026-02-03")
            )
            buy("C-2", "O-3", "20.00", at("2026-02-01"), currency="USD")  # counted apart
            buy("C-3", "O-4", "200.00", at("2026-07-15"))  # after as_of

            crm.answer_survey(
                customer="C-1",
                survey_id="S-1",
                metric="csat",
                score=5,
                occurred_at=at("2026-03-01"),
            )
            crm.answer_survey(
                customer="C-2",
                survey_id="S-1",
                metric="csat",
                score=3,
                occurred_at=at("2026-03-01"),
            )
            crm.answer_survey(
                customer="C-3",
                survey_id="S-1",
                metric="nps",
                score=10,
                occurred_at=at("2026-03-01"),
            )

            crm.file_complaint(
                customer="C-1",
                complaint_id="K-1",
                category="x",
                severity="low",
                occurred_at=at("2026-03-01"),
            )
            crm.resolve_complaint(
                customer="C-1",
                complaint_id="K-1",
                resolution="ok",
                occurred_at=at("2026-03-01", "06:00"),
            )
            crm.file_complaint(
                customer="C-2",
                complaint_id="K-2",
                category="x",
                severity="low",
                occurred_at=at("2026-03-02"),
            )
            crm.resolve_complaint(
                customer="C-2", complaint_id="K-2", resolution="ok", occurred_at=at("2026-03-03")
            )

            def task(customer: str, task: str, due: str, done: str | None = None) -> None:
                crm.schedule_care_task(
                    customer=customer, task_id=task, kind="check_in", due_on=due,
                    occurred_at=at("2026-04-01"),
                )  # fmt: skip
                if done is not None:
                    crm.complete_care_task(customer=customer, task_id=task, occurred_at=done)

            task("C-1", "T-1", "2026-04-10", at("2026-04-09"))  # early
            task("C-1", "T-2", "2026-04-10", at("2026-04-10", "23:00"))  # on the due day
            task("C-2", "T-3", "2026-04-10", at("2026-04-12"))  # late
            task("C-2", "T-4", "2026-06-01")  # overdue on 30 June
            task("C-2", "T-5", "2026-05-01")
            crm.cancel_care_task(customer="C-2", task_id="T-5", occurred_at=at("2026-04-02"))
            task("C-3", "T-6", "2026-07-10")  # not due yet
            report = run_report(crm, kpi_report, as_of="2026-06-30")

        yield report


def owners(report: KpiReport, *names: str) -> list[OwnerKpi]:
    by_name = {o.owner: o for o in report.owners}
    return [by_name[name] for name in names]


def test_kpis_are_per_owner_with_the_unassigned_apart(kpis_on_30_june: KpiReport) -> None:
    assert kpis_on_30_june.currencies == ["CNY", "USD"]
    assert [o.owner for o in kpis_on_30_june.owners] == ["(unassigned)", "staff:li", "staff:wang"]


def test_kpi_customers_and_revenue_count_what_happened_by_the_date(
    kpis_on_30_june: KpiReport,
) -> None:
    """Net of refunds, per currency (the USD order apart, never added to CNY); C-4 registers and
    C-3 buys after the date."""
    li, wang, nobody = owners(kpis_on_30_june, "staff:li", "staff:wang", "(unassigned)")
    assert (li.customers, li.revenue) == (2, {"CNY": "140.50", "USD": "20.00"})
    assert (wang.customers, wang.revenue) == (1, {"CNY": "0.00", "USD": "0.00"})
    assert (nobody.customers, nobody.revenue) == (1, {"CNY": "0.00", "USD": "0.00"})


def test_kpi_satisfaction_is_of_the_owners_customers(kpis_on_30_june: KpiReport) -> None:
    li, wang, nobody = owners(kpis_on_30_june, "staff:li", "staff:wang", "(unassigned)")
    assert (li.responses, li.csat, li.nps) == (2, 50.0, None)
    assert (wang.responses, wang.nps) == (1, 100.0)
    assert (nobody.responses, nobody.csat) == (0, None)


def test_kpi_complaints_and_their_resolution_time(kpis_on_30_june: KpiReport) -> None:
    li, wang = owners(kpis_on_30_june, "staff:li", "staff:wang")
    assert (li.complaints, li.complaints_open, li.resolution_hours_median) == (2, 0, 15.0)
    assert (wang.complaints, wang.resolution_hours_median) == (0, None)


def test_kpi_care_tasks_on_time_include_the_due_day(kpis_on_30_june: KpiReport) -> None:
    li, wang = owners(kpis_on_30_june, "staff:li", "staff:wang")
    assert (li.care_tasks_done, li.care_tasks_on_time_rate, li.care_tasks_overdue) == (3, 66.67, 1)
    assert (wang.care_tasks_done, wang.care_tasks_on_time_rate, wang.care_tasks_overdue) == (
        0,
        None,
        0,
    )


def test_kpi_rows_are_one_per_owner(kpis_on_30_june: KpiReport) -> None:
    rows = kpi.table_rows(kpis_on_30_june)
    assert [r["owner"] for r in rows] == ["(unassigned)", "staff:li", "staff:wang"]
    assert (rows[1]["revenue_CNY"], rows[1]["revenue_USD"]) == ("140.50", "20.00")
    assert (rows[0]["revenue_CNY"], rows[0]["revenue_USD"]) == ("0.00", "0.00")
    assert rows[1]["care_tasks_on_time_rate"] == 66.67

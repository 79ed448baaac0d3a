"""The care agenda: care tasks due and overdue, upcoming birthdays, complaints past their SLA.

Everything is "as of" the query: care tasks and complaints are folded event by event in stream
(version) order up to the cut (occurred_at <= as_of, recorded_at <= known_at), and "today" is the
query's reference date (the day of as_of in the store's time zone), so an agenda for a past day
is reproducible.

Birthdays: the ``care`` read model keeps month and day as facts with both times; the birthday as
of the query is the latest one given by then (an erased customer's rows are deleted). Customers
present as of the cut are listed. A 29 February birthday falls on **28 February** in non-leap
years (``LEAP_DAY_RULE``, :mod:`crm_es.domain.birthdays`, the care rules' rule too).

Consent: greetings are marketing. Greeting tasks (birthday, holiday) and birthdays of customers
whose marketing consent stood withdrawn as of the cut are left out (consent may be withdrawn
after a greeting was scheduled) and counted in ``withheld_without_consent``
(:mod:`crm_es.reports.facts.care_consent`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

import msgspec

from crm_es.domain.birthdays import LEAP_DAY_RULE, next_birthday
from crm_es.domain.times import local_text
from crm_es.reports.facts.care_consent import withdrawn_consent, without_withheld
from crm_es.reports.facts.care_tasks import TaskState, fold_tasks
from crm_es.reports.facts.customers import CustomerRef, load_refs, owner_of, present_customers
from crm_es.reports.facts.feedback import (
    fold_complaints,
    hours_between,
)
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

SECTIONS: Final = ("care_task_overdue", "care_task_due", "birthday", "complaint_past_sla")
TABLE_COLUMNS: Final = (
    "section", "customer_id", "external_ref", "owner", "task_id", "care_kind", "due_on", "staff",
    "days_overdue", "date", "days_until", "complaint_id", "severity", "sla_due", "hours_overdue",
)  # fmt: skip


class CareTaskItem(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    owner: str
    task_id: str
    care_kind: str | None
    due_on: str
    staff: str | None
    days_overdue: int | None  # None for tasks not yet due


class BirthdayItem(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    owner: str
    date: str  # the upcoming birthday (no year of birth, no name: personal data stays out)
    days_until: int


class ComplaintPastSla(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    external_ref: str | None
    owner: str
    complaint_id: str
    severity: str | None
    sla_due: str
    hours_overdue: float


class AgendaCounts(msgspec.Struct, frozen=True, kw_only=True):
    care_tasks_due: int
    care_tasks_overdue: int
    birthdays: int
    complaints_past_sla: int
    # Greeting tasks and birthdays left out: the customer had withdrawn marketing consent.
    withheld_without_consent: int = 0


class AgendaReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    reference_date: str
    days_ahead: int
    leap_day_rule: str
    counts: AgendaCounts
    care_tasks_due: list[CareTaskItem]
    care_tasks_overdue: list[CareTaskItem]
    birthdays: list[BirthdayItem]
    complaints_past_sla: list[ComplaintPastSla]


def _task_item(
    task: TaskState, refs: dict[str, CustomerRef], days_overdue: int | None
) -> CareTaskItem:
    assert task.due_on is not None
    ref = refs.get(task.customer_id)
    return CareTaskItem(
        customer_id=task.customer_id,
        external_ref=ref.external_ref if ref else None,
        owner=owner_of(refs, task.customer_id),
        task_id=task.task_id,
        care_kind=task.care_kind,
        due_on=task.due_on.isoformat(),
        staff=task.staff,
        days_overdue=days_overdue,
    )


def birthdays_as_of(tx: Tx, tables: dict[str, str], query: ReportQuery) -> list[tuple[str, str]]:
    """(customer, month-day) of every birthday as of the query: the latest fact that occurred
    by D and was recorded by T (a cleared birthday leaves none; an erased customer has none)."""
    rows = tx.query(
        "SELECT customer_id, month_day FROM (SELECT customer_id, month_day, ROW_NUMBER() OVER "
        "(PARTITION BY customer_id ORDER BY occurred_at DESC, version DESC) AS latest "
        f"FROM {tables['birthday_facts']} WHERE occurred_at <= ? AND recorded_at <= ?) AS facts "
        "WHERE latest = 1 AND month_day IS NOT NULL",
        (query.as_of_iso, query.known_at_iso),
    )
    return [(str(cid), str(month_day)) for cid, month_day in rows]


def upcoming_birthdays(
    tx: Tx, tables: dict[str, str], query: ReportQuery, refs: dict[str, CustomerRef], until: date
) -> list[BirthdayItem]:
    """Birthdays from the reference date to ``until`` of customers present as of the cut."""
    today = query.reference_date
    present = set(present_customers(tx, tables, query))
    rows = [(cid, day) for cid, day in birthdays_as_of(tx, tables, query) if cid in present]
    items = []
    for cid, month_day in rows:
        upcoming = next_birthday(month_day, today)
        if upcoming <= until:
            items.append(
                BirthdayItem(
                    customer_id=cid,
                    external_ref=refs[cid].external_ref,
                    owner=refs[cid].owner,
                    date=upcoming.isoformat(),
                    days_until=(upcoming - today).days,
                )
            )
    return sorted(items, key=lambda b: (b.date, b.customer_id))


def complaints_past_sla(
    tx: Tx, tables: dict[str, str], query: ReportQuery, refs: dict[str, CustomerRef]
) -> list[ComplaintPastSla]:
    """Complaints open as of the cut whose SLA due time is before as_of, longest overdue first."""
    as_of = query.as_of_iso
    items = []
    open_past_due = sorted(
        (c for c in fold_complaints(tx, tables, query)
         if c.status == "open" and c.sla_due is not None and c.sla_due < as_of),
        key=lambda c: (c.sla_due, c.customer_id, c.complaint_id),
    )  # fmt: skip
    for c in open_past_due:
        assert c.sla_due is not None
        ref = refs.get(c.customer_id)
        items.append(
            ComplaintPastSla(
                customer_id=c.customer_id,
                external_ref=ref.external_ref if ref else None,
                owner=owner_of(refs, c.customer_id),
                complaint_id=c.complaint_id,
                severity=c.severity,
                sla_due=local_text(c.sla_due, query.tz),
                hours_overdue=round(hours_between(c.sla_due, as_of), 2),
            )
        )
    return items


def agenda_report(
    tx: Tx, tables: dict[str, str], query: ReportQuery, days_ahead: int = 14
) -> AgendaReport:
    if days_ahead < 0:
        raise ValueError(f"days_ahead must not be negative, got {days_ahead}")
    today = query.reference_date
    horizon = today + timedelta(days=days_ahead)
    refs = load_refs(tx, tables, query)
    withdrawn = withdrawn_consent(tx, tables, query)
    tasks, withheld = without_withheld(fold_tasks(tx, tables, query), withdrawn)
    scheduled = [t for t in tasks if t.status == "scheduled" and t.due_on is not None]
    scheduled.sort(key=lambda t: (t.due_on or today, t.customer_id, t.task_id))
    due = [
        _task_item(t, refs, None)
        for t in scheduled
        if t.due_on is not None and today <= t.due_on <= horizon
    ]
    overdue = [
        _task_item(t, refs, (today - t.due_on).days)
        for t in scheduled
        if t.due_on is not None and t.due_on < today
    ]

    upcoming = upcoming_birthdays(tx, tables, query, refs, horizon)
    birthdays = [b for b in upcoming if b.customer_id not in withdrawn]
    past_sla = complaints_past_sla(tx, tables, query, refs)
    return AgendaReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        reference_date=today.isoformat(),
        days_ahead=days_ahead,
        leap_day_rule=LEAP_DAY_RULE,
        counts=AgendaCounts(
            care_tasks_due=len(due),
            care_tasks_overdue=len(overdue),
            birthdays=len(birthdays),
            complaints_past_sla=len(past_sla),
            withheld_without_consent=withheld + len(upcoming) - len(birthdays),
        ),
        care_tasks_due=due,
        care_tasks_overdue=overdue,
        birthdays=birthdays,
        complaints_past_sla=past_sla,
    )


def table_rows(report: AgendaReport) -> list[dict[str, object]]:
    """One row per agenda item, with a ``section`` column; every row has the same columns."""
    items_by_section: list[list[msgspec.Struct]] = [
        list(report.care_tasks_overdue),
        list(report.care_tasks_due),
        list(report.birthdays),
        list(report.complaints_past_sla),
    ]
    rows: list[dict[str, object]] = []
    for section, items in zip(SECTIONS, items_by_section, strict=True):
        for item in items:
            row: dict[str, object] = dict.fromkeys(TABLE_COLUMNS)
            row.update(msgspec.structs.asdict(item))
            row["section"] = section
            rows.append(row)
    return rows

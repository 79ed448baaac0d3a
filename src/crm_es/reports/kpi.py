"""Staff KPIs per owner: customers, revenue, satisfaction, complaint handling and care tasks.

Every figure is as of the query (occurred_at <= as_of, recorded_at <= known_at) and attributed to
the customer's owner as of the query (as known at ``known_at``); customers without an owner are
grouped under ``(unassigned)``. Revenue is net spend (purchases − refunds) per currency, never
summed across currencies. A care task is on time when the day of its completion (in the store's
time zone) is on or before its due date.

Contacts are those the staff member named like the owner logged (one definition with the contacts
report: :func:`crm_es.reports.facts.contacts.staff_counts`), so a staff member who logged contacts
but owns no customer has a row of its own; contacts naming no staff member are in no row.

A ``period`` (month, quarter or year: the calendar one holding the as-of day in the store's time
zone) narrows the flows to what occurred in it — revenue, survey answers, complaints filed and
their resolution, care tasks done, contacts logged — while stocks stay as of the cut: customers,
churned, won back, open complaints, overdue tasks. Revenue in a period is net spend at the cut
minus net spend just before the period began, so a refund counts in the period it occurred in.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Final, Literal

import msgspec

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.analytics.satisfaction import rate
from crm_es.domain.values import TIER_CURRENCY, format_minor
from crm_es.reports.facts.care_consent import withdrawn_consent, without_withheld
from crm_es.reports.facts.care_tasks import TaskState, fold_tasks, on_time
from crm_es.reports.facts.contacts import NO_STAFF, load_contacts, staff_counts
from crm_es.reports.facts.customers import load_refs, owner_of
from crm_es.reports.facts.feedback import (
    Answer,
    ComplaintState,
    complaint_fields,
    fold_complaints,
    group_by,
    load_answers,
    survey_fields,
)
from crm_es.reports.facts.population import LIFECYCLE_STAGES, load_population
from crm_es.reports.facts.purchase_history import load_purchase_histories, sales_currencies
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx


class OwnerKpi(msgspec.Struct, frozen=True, kw_only=True):
    owner: str
    customers: int  # present as of the cut
    churned: int  # lifecycle stage churned (by the rule or explicitly), as in segments and churn
    won_back: int  # lifecycle stage won back, as in segments and churn
    revenue: dict[str, str]  # each of the report's currencies -> net spend, decimal string
    responses: int  # survey answers of the owner's customers
    csat: float | None
    nps: float | None
    complaints: int  # filed by the cut
    complaints_open: int
    resolution_hours_median: float | None
    care_tasks_done: int
    care_tasks_on_time_rate: float | None  # % of completed tasks completed on or before due_on
    care_tasks_overdue: int  # still scheduled, due before the reference date
    contacts: int  # logged by this staff member (inbound and outbound)


Period = Literal["all", "month", "quarter", "year"]
PERIODS: Final = ("all", "month", "quarter", "year")


class KpiReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: str
    known_at: str
    reference_date: str
    period: str
    period_start: str | None  # the first day of the period (store's zone); None for "all"
    currencies: list[str]  # every currency with sales by the cut
    owners: list[OwnerKpi]


def period_start(period: Period, day: date) -> date | None:
    """The first day of the calendar ``period`` holding ``day`` (None: all time)."""
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if period == "year":
        return date(day.year, 1, 1)
    return None


def _net_spend(tx: Tx, tables: dict[str, str], query: ReportQuery, currency: str) -> dict[str, int]:
    return {
        cid: history.net_spend
        for cid, history in load_purchase_histories(tx, tables, query, currency).items()
    }


def kpi_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    rule: ChurnRule | None = None,
    period: Period = "all",
) -> KpiReport:
    refs = load_refs(tx, tables, query)
    today = query.reference_date
    first = period_start(period, today)
    first_day = first.isoformat() if first else ""
    before: ReportQuery | None = None
    if first is not None:  # the instant before the period's first day began
        began = datetime.combine(first, time.min, tzinfo=query.tz)
        before = msgspec.structs.replace(query, as_of=began - timedelta(microseconds=1))

    def owner(cid: str) -> str:
        return owner_of(refs, cid)

    pop = load_population(tx, tables, query, TIER_CURRENCY, rule or ChurnRule())
    customers: Counter[str] = Counter()
    churned: Counter[str] = Counter()
    won_back: Counter[str] = Counter()
    for cid, stage in zip(pop.customers.ids, pop.stages.tolist(), strict=True):
        customers[owner(cid)] += 1
        churned[owner(cid)] += LIFECYCLE_STAGES[stage] == "churned"
        won_back[owner(cid)] += LIFECYCLE_STAGES[stage] == "won_back"
    currencies = sales_currencies(tx, tables, query)
    revenue: dict[str, dict[str, int]] = {}
    for currency in currencies:
        earlier = _net_spend(tx, tables, before, currency) if before else {}
        for cid, net in _net_spend(tx, tables, query, currency).items():
            spent = revenue.setdefault(owner(cid), {})
            spent[currency] = spent.get(currency, 0) + net - earlier.get(cid, 0)

    def by_owner(fact: Answer | ComplaintState | TaskState) -> str:
        return owner(fact.customer_id)

    answers = group_by([a for a in load_answers(tx, tables, query) if a.day >= first_day], by_owner)
    complaints = group_by(fold_complaints(tx, tables, query), by_owner)
    # A greeting whose customer withdrew consent is not overdue work: one count with the agenda.
    withdrawn = withdrawn_consent(tx, tables, query)
    tasks = group_by(without_withheld(fold_tasks(tx, tables, query), withdrawn)[0], by_owner)
    logged = staff_counts(c for c in load_contacts(tx, tables, query) if c.day >= first_day)
    logged.pop(NO_STAFF, None)

    rows = []
    as_of = query.as_of_iso
    for name in sorted(
        customers.keys()
        | revenue.keys()
        | answers.keys()
        | complaints.keys()
        | tasks.keys()
        | logged.keys()
    ):
        survey = survey_fields(answers.get(name, []))
        owned_complaints = complaints.get(name, [])
        filed = complaint_fields([k for k in owned_complaints if k.filed_day >= first_day], as_of)
        complaint = complaint_fields(owned_complaints, as_of)
        owned_tasks = tasks.get(name, [])
        done = [
            t
            for t in owned_tasks
            if t.status == "completed"
            and (first is None or (t.completed_on is not None and t.completed_on >= first))
        ]
        overdue = [
            t
            for t in owned_tasks
            if t.status == "scheduled" and t.due_on is not None and t.due_on < today
        ]
        rows.append(
            OwnerKpi(
                owner=name,
                customers=customers[name],
                churned=churned[name],
                won_back=won_back[name],
                revenue={c: format_minor(revenue.get(name, {}).get(c, 0), c) for c in currencies},
                responses=survey["responses"],
                csat=survey["csat"],
                nps=survey["nps"],
                complaints=filed["filed"],
                complaints_open=complaint["open"],
                resolution_hours_median=filed["resolution_hours_median"],
                care_tasks_done=len(done),
                care_tasks_on_time_rate=rate(sum(1 for t in done if on_time(t)), len(done)),
                care_tasks_overdue=len(overdue),
                contacts=logged[name].contacts if name in logged else 0,
            )
        )
    return KpiReport(
        as_of=as_of,
        known_at=query.known_at_iso,
        reference_date=today.isoformat(),
        period=period,
        period_start=first.isoformat() if first else None,
        currencies=currencies,
        owners=rows,
    )


def table_rows(report: KpiReport) -> list[dict[str, object]]:
    """One row per owner, with a ``revenue_<currency>`` column per currency."""
    rows = []
    for owner in report.owners:
        row = msgspec.structs.asdict(owner)
        spent = row.pop("revenue")
        at = list(row).index("responses")
        items = list(row.items())
        revenue = [(f"revenue_{c}", spent[c]) for c in report.currencies]
        rows.append(dict(items[:at] + revenue + items[at:]))
    return rows

"""What the HTML report shows, gathered for ONE (as_of, known_at) query: :class:`PageData`.

:func:`collect` runs every report (segments, satisfaction, churn, agenda, KPIs, retention,
value, pipeline) and, in one read transaction, the monthly business figures
(:mod:`crm_es.reports.monthly`) and the three small fact queries that feed the charts beyond the
report Structs: complaint resolution times per severity (folded as the satisfaction report folds
them), loyalty points per month and care tasks per care kind and status (folded as the agenda
folds them). The action lists (:mod:`crm_es.reports.watchlist`) come from those reports and
the listed customers' streams.
Rendering is elsewhere: :mod:`crm_es.reports.html.sections` turns a ``PageData`` into
HTML sections and :mod:`crm_es.reports.html.page` assembles and writes the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from crm_es.domain.values import Severity
from crm_es.reports.agenda import AgendaReport
from crm_es.reports.api import Reports
from crm_es.reports.churn import ChurnReport
from crm_es.reports.facts.care_tasks import TaskState, fold_tasks
from crm_es.reports.facts.feedback import ComplaintState, fold_complaints, hours_between
from crm_es.reports.facts.merges import with_merges
from crm_es.reports.goals import GoalsReport
from crm_es.reports.html import charts
from crm_es.reports.kpi import KpiReport
from crm_es.reports.monthly import MonthlyReport, monthly_report
from crm_es.reports.pipeline import PipelineReport
from crm_es.reports.query import ReportQuery
from crm_es.reports.retention import RetentionReport
from crm_es.reports.satisfaction import SatisfactionReport
from crm_es.reports.segments import SegmentsReport
from crm_es.reports.value import ValueReport
from crm_es.reports.watchlist import Watchlist, watchlist
from crm_es.store.database import Tx

POINTS_KINDS: Final = ("granted", "redeemed", "expired")


@dataclass
class ComplaintTimes:
    """Complaints of one severity as of the cut."""

    filed: int = 0
    open: int = 0
    open_past_sla: int = 0
    hours: list[float] = field(default_factory=list)  # filed → last resolution, resolved ones
    breached: list[bool] = field(default_factory=list)  # resolved after sla_due, per hours item
    sla_hours: list[float] = field(default_factory=list)  # sla_due − filed, every complaint


def complaint_times(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> dict[str, ComplaintTimes]:
    """Resolution hours and SLA per severity, from the ``complaint_events`` fact rows."""
    by_severity: dict[str, ComplaintTimes] = {}
    for c in fold_complaints(tx, tables, query):
        times = by_severity.setdefault(c.severity or "(none)", ComplaintTimes())
        times.filed += 1
        if c.sla_due is not None:
            times.sla_hours.append(hours_between(c.filed_at, c.sla_due))
        if c.status == "resolved" and c.resolved_at is not None:
            times.hours.append(hours_between(c.filed_at, c.resolved_at))
            times.breached.append(c.sla_due is not None and c.resolved_at > c.sla_due)
        else:
            times.open += 1
            times.open_past_sla += int(_open_past_sla(c, query.as_of_iso))
    known = [s.value for s in Severity]
    return dict(sorted(by_severity.items(), key=lambda kv: _severity_rank(kv[0], known)))


def _open_past_sla(c: ComplaintState, as_of_iso: str) -> bool:
    return c.sla_due is not None and c.sla_due < as_of_iso


def _severity_rank(severity: str, known: list[str]) -> tuple[int, str]:
    return (known.index(severity), "") if severity in known else (len(known), severity)


def points_by_month(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> dict[str, dict[str, int]]:
    """Points granted / redeemed / expired per month (of the business day in the store's time
    zone)."""
    cut, params = query.cut()
    rows = tx.query(
        "SELECT SUBSTR(day, 1, 7), kind, SUM(points) "
        f"FROM {tables['points_facts']} WHERE {cut} GROUP BY SUBSTR(day, 1, 7), kind",
        params,
    )
    months: dict[str, dict[str, int]] = {}
    for month, kind, points in rows:
        months.setdefault(str(month), dict.fromkeys(POINTS_KINDS, 0))[str(kind)] = int(points)
    return dict(sorted(months.items()))


def task_status(task: TaskState, today: date) -> str:
    """One of the keys of :data:`charts.TASK_COLOURS` (overdue = due before the reference day)."""
    if task.status == "cancelled":
        return "cancelled"
    if task.status == "completed":
        on_time = task.completed_on is not None and (
            task.due_on is None or task.completed_on <= task.due_on
        )
        return "completed on time" if on_time else "completed late"
    return (
        "overdue" if task.due_on is not None and task.due_on < today else "scheduled (not yet due)"
    )


def care_task_counts(
    tx: Tx, tables: dict[str, str], query: ReportQuery
) -> dict[str, dict[str, int]]:
    """Care tasks per care kind and status, as of the cut."""
    counts: dict[str, dict[str, int]] = {}
    for task in fold_tasks(tx, tables, query):
        row = counts.setdefault(task.care_kind or "(none)", dict.fromkeys(charts.TASK_COLOURS, 0))
        row[task_status(task, query.reference_date)] += 1
    return dict(sorted(counts.items()))


def store_label(url: str) -> str:
    """The store URL without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class PageData:
    """Everything the page shows, for one query."""

    query: ReportQuery
    store: str
    zone: str  # the store's time zone name: every day and time on the page is in it
    seg: SegmentsReport
    sat: SatisfactionReport
    churn: ChurnReport
    agenda: AgendaReport
    kpi: KpiReport
    complaints: dict[str, ComplaintTimes]
    points: dict[str, dict[str, int]]
    tasks: dict[str, dict[str, int]]
    monthly: MonthlyReport
    watch: Watchlist
    retention: RetentionReport
    value: ValueReport
    pipeline: PipelineReport
    goals: GoalsReport

    @property
    def day(self) -> str:
        """The report date (the day of as_of in the store's time zone)."""
        return self.query.reference_date.isoformat()


def collect(reports: Reports, query: ReportQuery) -> PageData:
    """Run every report and the three fact queries for ``query``."""
    as_of, known_at = query.as_of, query.known_at
    seg = reports.segments(as_of, known_at)
    sat = reports.satisfaction(as_of, known_at)
    churn = reports.churn(as_of, known_at)
    agenda = reports.agenda(as_of, known_at)
    kpi = reports.kpi(as_of, known_at)
    retention = reports.retention(as_of, known_at)
    value = reports.value(as_of, known_at)
    pipeline = reports.pipeline(as_of, known_at)
    goals = reports.goals(as_of, known_at)
    watch = watchlist(reports.store, query, seg, churn, agenda)
    with reports.engine.db.reading() as tx:
        tables = with_merges(tx, reports.engine.all_active_tables(tx), query)
        return PageData(
            query=query,
            store=store_label(reports.store.config.url),
            zone=reports.store.timezone_name,
            seg=seg,
            sat=sat,
            churn=churn,
            agenda=agenda,
            kpi=kpi,
            complaints=complaint_times(tx, tables, query),
            points=points_by_month(tx, tables, query),
            tasks=care_task_counts(tx, tables, query),
            monthly=monthly_report(tx, tables, query),
            watch=watch,
            retention=retention,
            value=value,
            pipeline=pipeline,
            goals=goals,
        )

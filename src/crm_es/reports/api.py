"""The query API: every report as a msgspec Struct, computed from up-to-date read models.

    from crm_es import CRM
    from crm_es.reports import Reports

    with CRM() as crm, Reports(crm) as reports:
        seg = reports.segments(as_of="2026-06-30")
        print(seg.segment_sizes)

By default a report first brings the read models up to date (``refresh=True``): read-your-writes
for embedded use. A deployment with a follower process can pass ``refresh=False``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Final

import msgspec

from crm_es.analytics.churn_rule import ChurnRule
from crm_es.domain.contact_keys import ContactKind, query_hash
from crm_es.domain.errors import InvalidValue
from crm_es.domain.policy import (
    finds_within_scope,
    require,
    require_personal_selection,
)
from crm_es.domain.principals import Principal
from crm_es.projections.engine import ProjectionEngine
from crm_es.projections.models import read_models
from crm_es.reports import (
    agenda,
    churn,
    contacts,
    drivers,
    funnel,
    goals,
    kpi,
    pipeline,
    retention,
    satisfaction,
    segments,
    value,
)
from crm_es.reports import customer_find as finding
from crm_es.reports import customer_list as lists
from crm_es.reports import customer_summary as summaries
from crm_es.reports.facts.buyer_model import TimeUnit
from crm_es.reports.facts.customer_selection import ListFilters
from crm_es.reports.facts.merges import with_merges
from crm_es.reports.plan_reports import PlanReports
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx
from crm_es.store.pipeline_setting import pipeline_setting
from crm_es.store.store import HasStore, Store, store_of

REPORT_NAMES: Final = (
    "segments", "satisfaction", "churn", "agenda", "kpi", "contacts", "retention", "drivers",
    "value", "pipeline", "funnel", "goals",
)  # fmt: skip

TABLE_ROWS: Final[dict[str, Callable[[Any], list[dict[str, object]]]]] = {
    "segments": segments.table_rows,
    "satisfaction": satisfaction.table_rows,
    "churn": churn.table_rows,
    "agenda": agenda.table_rows,
    "kpi": kpi.table_rows,
    "contacts": contacts.table_rows,
    "drivers": drivers.table_rows,
    "retention": retention.table_rows,
    "value": value.table_rows,
    "pipeline": pipeline.table_rows,
    "funnel": funnel.table_rows,
    "goals": goals.table_rows,
}

Moment = str | datetime | None


class Reports(PlanReports):
    def __init__(self, source: Store | HasStore, *, refresh: bool = True) -> None:
        """``source``: the store, or the service that owns it (``Reports(crm)``), whose
        principal must be allowed reports."""
        require(source, "report")
        self.source = source  # whose principal decides the selections by personal data
        self.store = store_of(source)
        self.engine = ProjectionEngine(self.store, read_models())
        # A role that may not read events or write the read models (a login of roles init)
        # reads them as the owner's follower keeps them.
        self.refresh = refresh and self.store.reads_events and self.store.db.creates_tables

    def __enter__(self) -> Reports:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.engine.close()

    def _run(
        self, build: Callable[[Tx, dict[str, str], ReportQuery], Any], query: ReportQuery
    ) -> Any:
        if self.refresh:
            self.engine.catch_up_all()
        with self.engine.db.reading() as tx:
            tables = with_merges(tx, self.engine.all_active_tables(tx), query)
            return build(tx, tables, query)

    def segments(
        self, as_of: Moment = None, known_at: Moment = None, rule: ChurnRule | None = None
    ) -> segments.SegmentsReport:
        """``rule`` decides the churned lifecycle stage (default: k = 3, floor 270 days)."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: segments.SegmentsReport = self._run(
            lambda tx, t, q: segments.segments_report(tx, t, q, rule=rule), query
        )
        return report

    def churn(
        self,
        as_of: Moment = None,
        known_at: Moment = None,
        time_unit: churn.TimeUnit = "week",
        horizon_days: int = 90,
        rule: ChurnRule | None = None,
    ) -> churn.ChurnReport:
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: churn.ChurnReport = self._run(
            lambda tx, t, q: churn.churn_report(tx, t, q, time_unit, horizon_days, rule), query
        )
        return report

    def drivers(
        self,
        as_of: Moment = None,
        known_at: Moment = None,
        churn_days: int = 90,
        rule: ChurnRule | None = None,
    ) -> drivers.DriversReport:
        """Per factor (survey topic, complaint category): dissatisfied / neutral / satisfied
        shares, mean score, correlation with the overall score and with churn within
        ``churn_days`` (by ``rule``), ranked: the factor to fix first on top."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: drivers.DriversReport = self._run(
            lambda tx, t, q: drivers.drivers_report(tx, t, q, churn_days, rule), query
        )
        return report

    def satisfaction(
        self, as_of: Moment = None, known_at: Moment = None
    ) -> satisfaction.SatisfactionReport:
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: satisfaction.SatisfactionReport = self._run(satisfaction.satisfaction_report, query)
        return report

    def agenda(
        self, as_of: Moment = None, known_at: Moment = None, days_ahead: int = 14
    ) -> agenda.AgendaReport:
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: agenda.AgendaReport = self._run(
            lambda tx, t, q: agenda.agenda_report(tx, t, q, days_ahead), query
        )
        return report

    def kpi(
        self,
        as_of: Moment = None,
        known_at: Moment = None,
        rule: ChurnRule | None = None,
        period: kpi.Period = "all",
    ) -> kpi.KpiReport:
        """``rule`` decides who counts as churned and won back, as in segments and churn;
        ``period`` (month, quarter, year) narrows the flows to the one holding ``as_of``."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: kpi.KpiReport = self._run(
            lambda tx, t, q: kpi.kpi_report(tx, t, q, rule=rule, period=period), query
        )
        return report

    def contacts(
        self,
        as_of: Moment = None,
        known_at: Moment = None,
        idle_days: int = contacts.DEFAULT_IDLE_DAYS,
        section: str | None = None,
    ) -> contacts.ContactsReport:
        """Last contact per customer and channel, first response times (median, p90) by
        channel and staff, customers not contacted for ``idle_days`` (by owner), service
        records by phase and kind, contacts per staff member; ``section`` lists one only."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: contacts.ContactsReport = self._run(
            lambda tx, t, q: contacts.contacts_report(tx, t, q, idle_days, section), query
        )
        return report

    def retention(
        self,
        as_of: Moment = None,
        known_at: Moment = None,
        rule: ChurnRule | None = None,
        owner: str | None = None,
        segment: str | None = None,
        region: str | None = None,
        window_months: int = retention.WINDOW_MONTHS,
    ) -> retention.RetentionReport:
        """Cohorts by month of first purchase × months since, and the churn rule's statuses at
        each month's end; ``owner``, ``segment``, ``region`` choose the customers counted;
        ``window_months``: the months covered, up to the report date's (cohorts begin in them)."""
        retention.check_window(window_months)
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: retention.RetentionReport = self._run(
            lambda tx, t, q: retention.retention_report(
                tx,
                t,
                q,
                rule=rule,
                owner=owner,
                segment=segment,
                region=region,
                window_months=window_months,
            ),
            query,
        )
        return report

    def value(
        self,
        as_of: Moment = None,
        known_at: Moment = None,
        time_unit: TimeUnit = "week",
        horizon_days: int = 365,
        discount_rate: float = 0.10,
        rule: ChurnRule | None = None,
    ) -> value.ValueReport:
        """Expected discounted value (CLV) per buyer over ``horizon_days``, at the annual
        ``discount_rate``, in the store's currency: BG/NBD purchases × Gamma-Gamma spend."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: value.ValueReport = self._run(
            lambda tx, t, q: value.value_report(
                tx, t, q, time_unit, horizon_days, discount_rate, rule
            ),
            query,
        )
        return report

    def pipeline(self, as_of: Moment = None, known_at: Moment = None) -> pipeline.PipelineReport:
        """Sales opportunities: open count and amount by stage and owner, the weighted forecast,
        win rate, cycle time, stage-to-stage conversion and lost reasons (stages ranked by the
        store's pipeline as it stood at the knowledge time, ``crm-es settings pipeline``)."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        # As known at T: a pipeline changed later relabels no report of a past T.
        stages = pipeline_setting(self.store.settings).known_at(query.known_at)
        report: pipeline.PipelineReport = self._run(
            lambda tx, t, q: pipeline.pipeline_report(tx, t, q, stages), query
        )
        return report

    def funnel(
        self,
        as_of: Moment = None,
        known_at: Moment = None,
        months: int = funnel.DEFAULT_MONTHS,
    ) -> funnel.FunnelReport:
        """The category funnel 潜在 → 意向 → 准 → 签约: customers per stage as of the date
        (partners and internal apart), and for each of the last ``months`` calendar months the
        customers per stage at its start and the share of them in a later stage at its end."""
        funnel.check_months(months)
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        report: funnel.FunnelReport = self._run(
            lambda tx, t, q: funnel.funnel_report(tx, t, q, months), query
        )
        return report

    def customer_list(
        self,
        filters: ListFilters | None = None,
        as_of: Moment = None,
        known_at: Moment = None,
        rule: ChurnRule | None = None,
    ) -> lists.CustomerList:
        """The customers ``filters`` select (all without), sorted by external ref: no personal
        data; ``rule`` decides the churn status and the churned stage, as in segments."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        chosen, churn_rule = self._selection(filters), rule or ChurnRule()
        listed: lists.CustomerList = self._run(
            lambda tx, t, q: lists.customer_list(tx, t, q, chosen, churn_rule), query
        )
        return listed

    def campaign_export(
        self,
        campaign: str,
        filters: ListFilters | None = None,
        as_of: Moment = None,
        known_at: Moment = None,
        rule: ChurnRule | None = None,
    ) -> lists.CampaignExport:
        """The list of ``filters`` less the customers who may not be sent marketing (no consent
        as of ``as_of``, or none now; erased), with how many were left out and why."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        now = ReportQuery.at(tz=self.store.timezone)
        chosen, churn_rule = self._selection(filters), rule or ChurnRule()
        export: lists.CampaignExport = self._run(
            lambda tx, t, q: lists.campaign_export(tx, t, q, now, campaign, chosen, churn_rule),
            query,
        )
        return export

    def customer_summary(
        self,
        filters: ListFilters | None = None,
        as_of: Moment = None,
        known_at: Moment = None,
        rule: ChurnRule | None = None,
    ) -> summaries.CustomerSummary:
        """客户品类汇总: customers per category, industry, region, company size and income band,
        of those ``filters`` select (all without)."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        chosen, churn_rule = self._selection(filters), rule or ChurnRule()
        summary: summaries.CustomerSummary = self._run(
            lambda tx, t, q: summaries.customer_summary(tx, t, q, chosen, churn_rule),
            query,
        )
        return summary

    def find_customers(
        self,
        phone: str | None = None,
        email: str | None = None,
        as_of: Moment = None,
        known_at: Moment = None,
    ) -> finding.CustomerMatches:
        """客户识别: the customers whose phone (or email: give one) as of ``as_of`` is this one,
        through the keyed blind index (normalised as :mod:`crm_es.domain.contact_keys` says).
        Who holds a value is personal data: staff and managers find among the customers they
        work on, admins and privacy officers among all, anyone else is refused."""
        if (phone is None) == (email is None):
            given = "both" if phone is not None else "neither"
            raise InvalidValue("phone/email", given, "give a phone or an email, one of them")
        kind: ContactKind = "phone" if phone is not None else "email"
        principal = getattr(self.source, "principal", None)
        within = isinstance(principal, Principal) and finds_within_scope(principal, kind)
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        digest = query_hash(self.store.secrets.contact_index_key, kind, phone or email or "")
        found: finding.CustomerMatches = self._run(
            lambda tx, t, q: finding.find_customers(tx, t, q, kind, digest), query
        )
        if within:  # staff and managers: only the customers they work on (owners as of D)
            assert isinstance(principal, Principal)
            found = finding.worked_on_by(found, principal)
        return found

    def duplicate_customers(
        self, as_of: Moment = None, known_at: Moment = None
    ) -> finding.DuplicateCustomers:
        """Groups of customers sharing a phone or an email as of ``as_of`` (likely registered
        twice); refused, like a find, to a principal that may not read every customer's."""
        require_personal_selection(self.source, "phone")
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        groups: finding.DuplicateCustomers = self._run(finding.duplicate_customers, query)
        return groups

    def _selection(self, filters: ListFilters | None) -> ListFilters:
        """``filters`` (none: everyone), refused when they select by a tag to a principal
        who may not read every customer's tags (who carries one is personal data)."""
        chosen = filters or ListFilters()
        if chosen.tag:
            require_personal_selection(self.source, "tag")
        return chosen


def to_csv(rows: list[dict[str, object]]) -> str:
    """Rows as CSV, every cell escaped against formula injection (see csv_cells): a ref or a
    name typed as ``=HYPERLINK(…)`` must not run in the spreadsheet that opens the report."""
    from crm_es.reports.csv_cells import spreadsheet_cell

    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: spreadsheet_cell(v) for k, v in row.items()})
    return out.getvalue()


def to_json(report: Any) -> bytes:
    return msgspec.json.encode(report)

"""What a goal's metric measures over a window of days, for the customers of its scope: each
metric through the one definition the other reports use, never a copy of it.

- ``csat``, ``nps``, ``ces``: :func:`~crm_es.reports.facts.feedback.survey_fields` (the
  satisfaction report's) over the survey answers given on the window's days;
- ``complaint_sla_breach_rate``: :func:`~crm_es.reports.facts.feedback.complaint_fields` over
  the complaints filed on the window's days, as of the window's end;
- ``win_rate``: :func:`~crm_es.reports.pipeline.win_rate` over the opportunities closed on the
  window's days;
- ``care_tasks_on_time``: :func:`~crm_es.reports.facts.care_tasks.on_time` over the care tasks
  completed on the window's days, greetings withheld after a consent withdrawal left out (as
  the KPI report counts them);
- ``revenue``: net spend (purchases − refunds, in the goal's currency,
  :func:`~crm_es.reports.facts.purchase_history.load_purchase_histories`) at the window's end
  minus that just before its first day, as the KPI report counts a period's revenue;
- ``retention``: a stock, as of the window's end: the share of customers with a purchase whom
  the churn rule (:func:`~crm_es.reports.facts.population.load_population`) does not count as
  churned.

A scope keeps the customers whose owner (``(unassigned)`` for none), region or R×F segment was
the scope's value as of the window's end. Every read is a cut (occurred by the window's end,
recorded by the report's ``known_at``) and is made once per cut for all goals.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

import msgspec

from crm_es.analytics.churn_rule import STATUS_NAMES, ChurnRule
from crm_es.analytics.satisfaction import rate
from crm_es.domain.plan import GoalMetric, GoalScope
from crm_es.domain.values import TIER_CURRENCY
from crm_es.reports.facts.care_consent import withdrawn_consent, without_withheld
from crm_es.reports.facts.care_tasks import fold_tasks, on_time
from crm_es.reports.facts.customers import UNASSIGNED, attributes_as_of, owners_as_of
from crm_es.reports.facts.feedback import (
    complaint_fields,
    fold_complaints,
    load_answers,
    survey_fields,
)
from crm_es.reports.facts.opportunities import fold_opportunities
from crm_es.reports.facts.population import Population, load_population
from crm_es.reports.facts.purchase_history import load_purchase_histories
from crm_es.reports.pipeline import win_rate
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

_SURVEY_FIELDS = {GoalMetric.CSAT: "csat", GoalMetric.NPS: "nps", GoalMetric.CES: "ces_mean"}
_CHURNED = STATUS_NAMES.index("churned")


class Window(NamedTuple):
    """The days ``first`` to ``last`` (store time zone), read as of ``query`` (its as_of is the
    end of ``last``, or the report's own as_of when that is earlier)."""

    first: date
    last: date
    query: ReportQuery


def end_of(day: date, query: ReportQuery) -> datetime:
    """The last instant of ``day`` in the store's time zone."""
    return start_of(day + timedelta(days=1), query) - timedelta(microseconds=1)


def start_of(day: date, query: ReportQuery) -> datetime:
    """The first instant of ``day`` in the store's time zone."""
    return datetime.combine(day, time.min, tzinfo=query.tz)


def window(first: date, last: date, report: ReportQuery) -> Window:
    """The window of days ``first``..``last`` as the report (D, T) may see it: never past D."""
    as_of = min(end_of(last, report), report.as_of)
    return Window(first, last, msgspec.structs.replace(report, as_of=as_of))


class Measures:
    """Measures goals in one transaction, each cut's facts read once."""

    def __init__(self, tx: Tx, tables: dict[str, str]) -> None:
        self.tx, self.tables = tx, tables
        self._read: dict[tuple[str, datetime, str], Any] = {}

    def _once(self, what: str, query: ReportQuery, load: Callable[[], Any], extra: str = "") -> Any:
        key = (what, query.as_of, extra)
        if key not in self._read:
            self._read[key] = load()
        return self._read[key]

    def _population(self, query: ReportQuery) -> Population:
        population: Population = self._once(
            "population",
            query,
            lambda: load_population(self.tx, self.tables, query, TIER_CURRENCY, ChurnRule()),
        )
        return population

    def members(self, scope: GoalScope, value: str | None, query: ReportQuery) -> set[str] | None:
        """The customers of the scope as of ``query`` (None: every customer)."""
        if scope is GoalScope.ALL:
            return None
        found: dict[str, str | None]
        if scope is GoalScope.OWNER:
            found = dict(
                self._once("owners", query, lambda: owners_as_of(self.tx, self.tables, query))
            )
        elif scope is GoalScope.REGION:
            found = self._once(
                "region", query,
                lambda: attributes_as_of(self.tx, self.tables, query, ["region"])["region"],
            )  # fmt: skip
        else:
            found = dict(self._population(query).segment_of())
        return {cid for cid, v in found.items() if v == value}

    def measure(
        self,
        metric: GoalMetric,
        scope: GoalScope,
        value: str | None,
        at: Window,
        currency: str | None = None,
    ) -> float | int | None:
        """The metric over the window (revenue: minor units of ``currency``); None when there
        is nothing to measure (no answers, no closed opportunities …)."""
        q, first, last = at.query, at.first.isoformat(), at.last.isoformat()
        members = self.members(scope, value, q)
        if scope is GoalScope.OWNER and value == UNASSIGNED and members is not None:
            members |= self._unowned(q)

        def kept(cid: str) -> bool:
            return members is None or cid in members

        tx, tables = self.tx, self.tables
        if metric in _SURVEY_FIELDS:
            answers = self._once("answers", q, lambda: load_answers(tx, tables, q))
            mine = [a for a in answers if first <= a.day <= last and kept(a.customer_id)]
            figure: float | None = survey_fields(mine)[_SURVEY_FIELDS[metric]]
            return figure
        if metric is GoalMetric.COMPLAINT_SLA_BREACH_RATE:
            states = self._once("complaints", q, lambda: fold_complaints(tx, tables, q))
            filed = [s for s in states if first <= s.filed_day <= last and kept(s.customer_id)]
            breach: float | None = complaint_fields(filed, q.as_of_iso)["sla_breach_rate"]
            return breach
        if metric is GoalMetric.WIN_RATE:
            deals = self._once("opportunities", q, lambda: fold_opportunities(tx, tables, q))
            return win_rate(
                o for o in deals
                if o.closed_at is not None and kept(o.customer_id)
                and at.first <= o.closed_at.astimezone(q.tz).date() <= at.last
            )  # fmt: skip
        if metric is GoalMetric.CARE_TASKS_ON_TIME:
            tasks = self._once("tasks", q, lambda: self._care_tasks(q))
            done = [
                t for t in tasks
                if t.status == "completed" and t.completed_on is not None
                and at.first <= t.completed_on <= at.last and kept(t.customer_id)
            ]  # fmt: skip
            return rate(sum(1 for t in done if on_time(t)), len(done))
        if metric is GoalMetric.REVENUE:
            assert currency is not None
            before = msgspec.structs.replace(q, as_of=end_of(at.first - timedelta(days=1), q))
            now = self._net_spend(q, currency)
            earlier = self._net_spend(before, currency)
            return sum(net - earlier.get(cid, 0) for cid, net in now.items() if kept(cid))
        return self._retention(q, kept)

    def _care_tasks(self, q: ReportQuery) -> list[Any]:
        tasks = fold_tasks(self.tx, self.tables, q)
        return without_withheld(tasks, withdrawn_consent(self.tx, self.tables, q))[0]

    def _net_spend(self, q: ReportQuery, currency: str) -> dict[str, int]:
        histories = self._once(
            "net_spend", q, lambda: load_purchase_histories(self.tx, self.tables, q, currency),
            currency,
        )  # fmt: skip
        return {cid: h.net_spend for cid, h in histories.items()}

    def _unowned(self, q: ReportQuery) -> set[str]:
        """Customers with no owner fact at all: ``(unassigned)`` too."""
        ids = self._population(q).customers.ids
        owned = self._once("owners", q, lambda: owners_as_of(self.tx, self.tables, q))
        return {cid for cid in ids if cid not in owned}

    def _retention(self, q: ReportQuery, kept: Callable[[str], bool]) -> float | None:
        population = self._population(q)
        days = population.facts.purchase_days.tolist()
        statuses = population.statuses.tolist()
        buyers = [
            status
            for cid, n, status in zip(population.customers.ids, days, statuses, strict=True)
            if n > 0 and kept(cid)
        ]
        return rate(sum(1 for s in buyers if s != _CHURNED), len(buyers))

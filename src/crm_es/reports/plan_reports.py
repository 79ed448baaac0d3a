"""The reports on the customer-management plan, as methods of
:class:`~crm_es.reports.api.Reports` (kept apart so each module stays one concept)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any

from crm_es.domain.errors import PermissionDenied
from crm_es.domain.plan import PLAN_ID
from crm_es.reports import goals
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx
from crm_es.store.store import Store


class PlanReports:
    store: Store

    @abstractmethod
    def _run(
        self, build: Callable[[Tx, dict[str, str], ReportQuery], Any], query: ReportQuery
    ) -> Any: ...

    def goals(
        self, as_of: str | datetime | None = None, known_at: str | datetime | None = None
    ) -> goals.GoalsReport:
        """Each goal of the customer-management plan as of the date: its baseline, its value
        so far, the target, where the straight line from baseline to target is today, and
        whether the value is on track (:mod:`crm_es.reports.goals`)."""
        query = ReportQuery.at(as_of, known_at, tz=self.store.timezone)
        events = self._plan_events()
        report: goals.GoalsReport = self._run(
            lambda tx, t, q: goals.goals_report(tx, t, q, events), query
        )
        return report

    def _plan_events(self) -> list[Any]:
        """The plan's own stream (a few events), read from the event store. A PostgreSQL login
        of a role that may not read the events (an analyst, after ``crm-es roles init``) is
        told so rather than shown a database error."""
        from eventsourcing.persistence import ProgrammingError

        try:
            return list(self.store.events.get(PLAN_ID))
        except ProgrammingError as e:
            if "permission denied" not in str(e):
                raise
            why = "the plan's goals are read from the event store, which this login may not read"
            who = getattr(getattr(self, "source", None), "principal", None)
            name = getattr(who, "name", "this login")
            raise PermissionDenied(name, "read the plan", why=why) from None

"""Whom the win-back care rule calls: customers at risk by the churn rule who are of high value,
with the day each became at risk.

"At risk" is the churn report's answer (the one rule, :mod:`crm_es.analytics.churn_rule`, over
the ``customers`` read model as of the query) and "high value" is either the top RFM monetary
quintile over the buyers (M = 5, as the segments report scores it) or a net spend of at least an
amount, in one currency. ``crm-es maintain`` asks this as of the start of its day and hands the
answer to the care rules (:mod:`crm_es.app.care_scheduler`); the rules need the population,
which no single customer's stream holds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID

import msgspec
import numpy as np

from crm_es.analytics.churn_rule import STATUS_NAMES, ChurnRule
from crm_es.domain.times import EPOCH
from crm_es.projections.engine import ProjectionEngine
from crm_es.projections.models import read_models
from crm_es.reports.facts.merges import with_merges
from crm_es.reports.facts.population import Population, load_population
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx
from crm_es.store.store import Store

_AT_RISK = STATUS_NAMES.index("at_risk")
_TOP_QUINTILE = 5


class HighValue(msgspec.Struct, frozen=True, kw_only=True):
    """High value: net spend in ``currency`` of at least ``min_net_spend`` minor units, or (when
    None) the top RFM monetary quintile."""

    currency: str
    min_net_spend: int | None = None


def at_risk_high_value(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    high_value: HighValue,
    churn: ChurnRule | None = None,
) -> dict[UUID, date]:
    """At-risk, high-value customers as of ``query``, with the first day each was at risk:
    the day their silence first passed the at-risk share of their churn threshold."""
    rule = churn or ChurnRule()
    pop = load_population(tx, tables, query, high_value.currency, rule)
    high = _high_value(pop, high_value)
    # At risk once silent for more than share × threshold days: from the next whole day on.
    silence = np.floor(rule.at_risk_share * pop.thresholds).astype(np.int64) + 1
    chosen = np.flatnonzero((pop.statuses == _AT_RISK) & high)
    return {
        UUID(pop.customers.ids[i]): EPOCH + timedelta(days=int(pop.facts.last_day[i] + silence[i]))
        for i in chosen.tolist()
    }


def _high_value(pop: Population, high_value: HighValue) -> np.ndarray:
    high = np.zeros(len(pop.customers.ids), dtype=bool)
    if high_value.min_net_spend is None:
        high[pop.buyers] = pop.scores.m == _TOP_QUINTILE
    else:
        least = high_value.min_net_spend
        high[:] = [spend >= least for spend in pop.facts.net_spend]
    return high


def load_at_risk_high_value(
    store: Store, as_of: datetime, high_value: HighValue, churn: ChurnRule | None = None
) -> dict[UUID, date]:
    """:func:`at_risk_high_value` as of ``as_of`` (known now), from read models brought up to
    date first, as :class:`crm_es.reports.api.Reports` does."""
    engine = ProjectionEngine(store, read_models())
    try:
        if store.reads_events and store.db.creates_tables:
            engine.catch_up_all()
        with engine.db.reading() as tx:
            query = ReportQuery.at(as_of=as_of, tz=store.timezone)
            tables = with_merges(tx, engine.all_active_tables(tx), query)
            return at_risk_high_value(tx, tables, query, high_value, churn)
    finally:
        engine.close()

"""The population as of a query: every registered customer with purchase facts, RFM scores,
rule status, win-back and lifecycle stage, as numpy columns.

One definition of "which segment, which stage, churned or not" for every report: the segments
report shows it, the satisfaction report groups answers by its segments, the churn report counts
its statuses. RFM quintiles depend on the whole population and the reference date, so they are
computed here at query time, never stored.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np

from crm_es.analytics.churn_rule import (
    STATUS_NAMES,
    BoolArray,
    ChurnRule,
    IntArray,
    churn_thresholds,
    rule_return_days,
    rule_statuses,
    won_back,
)
from crm_es.analytics.rfm import RF_GRID_CELLS, RfmArrays, id_ranks, score_rfm_arrays
from crm_es.domain.times import day_number
from crm_es.domain.values import Tier
from crm_es.reports.facts.purchase_arrays import (
    CustomerColumns,
    PurchaseFacts,
    explicit_churned,
    explicit_returns,
    load_customer_columns,
    load_purchase_facts,
)
from crm_es.reports.facts.purchase_history import ChurnFacts, load_churn_facts
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

LOYAL_SEGMENTS: Final = frozenset({"Champions", "Loyal Customers"})
LOYAL_TIERS: Final = frozenset({Tier.GOLD, Tier.PLATINUM})
LIFECYCLE_STAGES: Final = ("prospect", "new", "repeat", "loyal", "churned", "won_back")
_LOYAL_CELLS = np.array([segment in LOYAL_SEGMENTS for segment in RF_GRID_CELLS], dtype=bool)


class Population(NamedTuple):
    """Columns aligned with ``customers.ids`` (profile order), except the RFM ones, which are
    aligned with ``buyers`` (the indexes of customers with a purchase day)."""

    customers: CustomerColumns
    facts: PurchaseFacts
    churn: dict[str, ChurnFacts]
    thresholds: np.ndarray  # days of silence after which each customer is churned by the rule
    statuses: IntArray  # codes into STATUS_NAMES
    returned: IntArray  # day number of the latest return, by the rule or explicit (or NO_RETURN)
    won_back: BoolArray  # returned within the threshold and not churned: the won_back stage
    stages: IntArray  # codes into LIFECYCLE_STAGES
    buyers: IntArray
    recency: IntArray  # days since the last purchase day, of each buyer
    scores: RfmArrays  # of each buyer

    def segment_of(self) -> dict[str, str]:
        """R×F grid segment of every customer with a purchase day, by customer id."""
        ids = self.customers.ids
        grid = self.scores.grid_index().tolist()
        return {ids[i]: RF_GRID_CELLS[g] for i, g in zip(self.buyers.tolist(), grid, strict=True)}


def load_population(
    tx: Tx, tables: dict[str, str], query: ReportQuery, currency: str, rule: ChurnRule
) -> Population:
    customers = load_customer_columns(tx, tables, query)
    ids, n = customers.ids, len(customers.ids)
    facts = load_purchase_facts(tx, tables, query, currency, ids)
    churn = load_churn_facts(tx, tables, query)
    today = day_number(query.reference_date)
    # RFM over customers with a purchase day, in profile order; ties broken by customer id.
    buyers = np.flatnonzero(facts.purchase_days > 0)
    recency = today - facts.last_day[buyers]
    scores = score_rfm_arrays(
        id_ranks(ids)[buyers],
        recency,
        facts.purchase_days[buyers],
        _spends(facts.net_spend, buyers),
    )
    thresholds = churn_thresholds(facts.purchase_days, facts.median_gap, rule)
    explicit = explicit_churned(churn, ids)
    statuses = rule_statuses(facts.purchase_days, facts.last_day, thresholds, explicit, today, rule)
    returned = np.maximum(
        rule_return_days(facts.day_owner, facts.day_of, rule, n), explicit_returns(churn, ids)
    )
    back = won_back(returned, thresholds, today) & (statuses != STATUS_NAMES.index("churned"))
    loyal = np.array([tier in LOYAL_TIERS for tier in customers.tiers], dtype=bool)
    loyal[buyers] |= _LOYAL_CELLS[scores.grid_index()]
    stages = _lifecycle_codes(statuses, back, facts.purchase_days, loyal)
    return Population(
        customers, facts, churn, thresholds, statuses, returned, back, stages, buyers, recency,
        scores,
    )  # fmt: skip


def _spends(net_spend: list[int], at: IntArray) -> IntArray | list[int]:
    """The spends at ``at``: an int64 array, or exact ints if some do not fit one."""
    try:
        return np.asarray(net_spend, dtype=np.int64)[at]
    except OverflowError:
        return [net_spend[i] for i in at.tolist()]


def _lifecycle_codes(
    statuses: IntArray, won_back: BoolArray, purchase_days: IntArray, loyal: BoolArray
) -> IntArray:
    """Each customer's lifecycle stage, as indexes into LIFECYCLE_STAGES: churned (by the rule
    or explicitly), won back, prospect (no purchase), loyal (a top R×F cell or tier), new (one
    purchase day), else repeat."""
    stage = LIFECYCLE_STAGES.index
    churned = statuses == STATUS_NAMES.index("churned")
    conditions = [churned, won_back, purchase_days == 0, loyal, purchase_days == 1]
    choices = [stage(s) for s in ("churned", "won_back", "prospect", "loyal", "new")]
    return np.asarray(np.select(conditions, choices, default=stage("repeat")), dtype=np.int64)

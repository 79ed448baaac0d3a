"""The segments report: attributes, lifecycle stage, RFM scores and both segment maps, as of a date.

RFM facts come from the ``customers`` read model; quintile scores depend on the whole population
and the reference date, so they are computed here at query time, never stored. They are computed
for all customers at once (:mod:`crm_es.projections.purchase_arrays`,
:func:`~crm_es.projections.rfm.score_rfm_arrays`), equal to the per-customer definitions
(:func:`~crm_es.projections.purchase_history.rule_status`, :func:`lifecycle_stage`,
:func:`~crm_es.projections.rfm.score_rfm`).
"""

from __future__ import annotations

import msgspec
import numpy as np

from crm_es.app.database import Tx
from crm_es.domain.values import TIER_CURRENCY, Tier, currency_exponent
from crm_es.projections.purchase_arrays import (
    STATUS_NAMES,
    BoolArray,
    IntArray,
    churn_thresholds,
    day_number,
    explicit_churned,
    format_minor,
    load_customer_columns,
    load_purchase_facts,
    rule_statuses,
)
from crm_es.projections.purchase_history import ChurnRule, load_churn_facts
from crm_es.projections.report_query import ReportQuery
from crm_es.projections.rfm import (
    CN8_CELLS,
    CN8_MAP_VERSION,
    CN8_THRESHOLD_RULE,
    RF_GRID_CELLS,
    RF_GRID_VERSION,
    RFM_CODES,
    RfmScore,
    id_ranks,
    score_rfm_arrays,
)

LOYAL_SEGMENTS = frozenset({"Champions", "Loyal Customers"})
LOYAL_TIERS = frozenset({Tier.GOLD, Tier.PLATINUM})
LIFECYCLE_STAGES = ("prospect", "new", "repeat", "loyal", "churned", "won_back")
_LOYAL_CELLS = np.array([segment in LOYAL_SEGMENTS for segment in RF_GRID_CELLS], dtype=bool)


class CustomerSegment(msgspec.Struct, frozen=True):
    customer_id: str
    external_ref: str | None
    owner: str | None
    region: str | None
    tier: str
    lifecycle: str
    rfm: str | None  # three-digit code such as "545"; None without a purchase
    segment: str | None
    segment_cn: str | None
    recency_days: int | None
    frequency: int
    monetary: str  # net spend in the report currency, decimal string


class SegmentsReport(msgspec.Struct, frozen=True):
    as_of: str
    known_at: str
    currency: str
    grid_version: str
    cn_map_version: str
    cn_threshold_rule: str
    segment_sizes: dict[str, int]
    segment_cn_sizes: dict[str, int]
    lifecycle_sizes: dict[str, int]
    customers: list[CustomerSegment]


def lifecycle_stage(
    status: str, won_back: bool, purchase_days: int, score: RfmScore | None, tier: str
) -> str:
    """One customer's stage; :func:`segments_report` computes it for all at once."""
    if status == "churned":
        return "churned"
    if won_back:
        return "won_back"
    if purchase_days == 0:
        return "prospect"
    if (score is not None and score.segment in LOYAL_SEGMENTS) or tier in LOYAL_TIERS:
        return "loyal"
    return "new" if purchase_days == 1 else "repeat"


def _names(
    table: tuple[str, ...], index: IntArray, at: IntArray, n: int
) -> tuple[list[str | None], list[int]]:
    """Names ``table[index]`` placed at the indexes ``at`` of a list of ``n`` (None elsewhere),
    and how many customers each entry of ``table`` names."""
    full = np.full(n, len(table), dtype=np.int64)
    full[at] = index
    names: tuple[str | None, ...] = (*table, None)
    counts: list[int] = np.bincount(index, minlength=len(table)).tolist()
    return list(map(names.__getitem__, full.tolist())), counts


def _spends(net_spend: list[int], at: IntArray) -> IntArray | list[int]:
    """The spends at ``at``: an int64 array, or exact ints if some do not fit one."""
    try:
        return np.asarray(net_spend, dtype=np.int64)[at]
    except OverflowError:
        return [net_spend[i] for i in at.tolist()]


def _sizes(table: tuple[str, ...], counts: list[int]) -> dict[str, int]:
    """Customers per name (several cells can share one), sorted by name, without zeros."""
    sizes: dict[str, int] = {}
    for name, count in zip(table, counts, strict=True):
        if count:
            sizes[name] = sizes.get(name, 0) + count
    return dict(sorted(sizes.items()))


def segments_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    currency: str = TIER_CURRENCY,
    rule: ChurnRule | None = None,
) -> SegmentsReport:
    rule = rule or ChurnRule()
    customers = load_customer_columns(tx, tables, query)
    ids, n = customers.ids, len(customers.ids)
    facts = load_purchase_facts(tx, tables, query, currency, ids)
    churn = load_churn_facts(tx, tables, query)
    as_of = query.reference_date
    exponent = currency_exponent(currency)
    # RFM over customers with a purchase day, in profile order; ties broken by customer id.
    buyers = np.flatnonzero(facts.purchase_days > 0)
    recency = day_number(as_of) - facts.last_day[buyers]
    scores = score_rfm_arrays(
        id_ranks(ids)[buyers],
        recency,
        facts.purchase_days[buyers],
        _spends(facts.net_spend, buyers),
    )
    grid = scores.grid_index()
    segment, segment_counts = _names(RF_GRID_CELLS, grid, buyers, n)
    segment_cn, cn_counts = _names(CN8_CELLS, scores.cn_index(), buyers, n)
    codes, _ = _names(RFM_CODES, scores.code_index(), buyers, n)
    recency_days = np.full(n, None, dtype=object)
    recency_days[buyers] = recency.tolist()
    explicit = explicit_churned(churn, ids)
    statuses = rule_statuses(facts, churn_thresholds(facts, rule), explicit, as_of, rule)
    won_back = np.zeros(n, dtype=bool)
    if churn:
        won_back[[i for i, f in enumerate(map(churn.get, ids)) if f and f.won_back]] = True
    loyal = np.array([tier in LOYAL_TIERS for tier in customers.tiers], dtype=bool)
    loyal[buyers] |= _LOYAL_CELLS[grid]
    stages = _lifecycle_codes(statuses, won_back, facts.purchase_days, loyal)
    lifecycle = [LIFECYCLE_STAGES[code] for code in stages.tolist()]
    frequency = facts.purchase_days.tolist()
    monetary = format_minor(facts.net_spend, exponent)
    rows = list(
        map(
            CustomerSegment,
            ids, customers.external_refs, customers.owners, customers.regions, customers.tiers,
            lifecycle, codes, segment, segment_cn, recency_days.tolist(), frequency, monetary,
        )
    )  # fmt: skip
    stage_counts = np.bincount(stages, minlength=len(LIFECYCLE_STAGES)).tolist()
    return SegmentsReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        currency=currency,
        grid_version=RF_GRID_VERSION,
        cn_map_version=CN8_MAP_VERSION,
        cn_threshold_rule=CN8_THRESHOLD_RULE,
        segment_sizes=_sizes(RF_GRID_CELLS, segment_counts),
        segment_cn_sizes=_sizes(CN8_CELLS, cn_counts),
        lifecycle_sizes=dict(zip(LIFECYCLE_STAGES, stage_counts, strict=True)),
        customers=rows,
    )


def _lifecycle_codes(
    statuses: IntArray, won_back: BoolArray, purchase_days: IntArray, loyal: BoolArray
) -> IntArray:
    """:func:`lifecycle_stage` of every customer, as indexes into LIFECYCLE_STAGES."""
    stage = LIFECYCLE_STAGES.index
    churned = statuses == STATUS_NAMES.index("churned")
    conditions = [churned, won_back, purchase_days == 0, loyal, purchase_days == 1]
    choices = [stage(s) for s in ("churned", "won_back", "prospect", "loyal", "new")]
    return np.asarray(np.select(conditions, choices, default=stage("repeat")), dtype=np.int64)


def table_rows(report: SegmentsReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(c) for c in report.customers]

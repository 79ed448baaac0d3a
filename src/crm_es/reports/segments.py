"""The segments report: attributes, lifecycle stage, RFM scores and both segment maps, as of a date.

The figures are those of the population as of the query (:mod:`crm_es.reports.facts.population`):
RFM quintiles over customers with a purchase day, the R×F grid and the Chinese 8-class map of
:mod:`crm_es.analytics.rfm`, the churn rule of :mod:`crm_es.analytics.churn_rule`.
"""

from __future__ import annotations

import msgspec
import numpy as np

from crm_es.analytics.churn_rule import ChurnRule, IntArray
from crm_es.analytics.rfm import (
    CN8_CELLS,
    CN8_MAP_VERSION,
    CN8_THRESHOLD_RULE,
    RF_GRID_CELLS,
    RF_GRID_VERSION,
    RFM_CODES,
)
from crm_es.domain.values import TIER_CURRENCY, format_minor_many
from crm_es.reports.facts.population import LIFECYCLE_STAGES, load_population
from crm_es.reports.facts.purchase_history import purchases_by_currency
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx


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
    # Purchases paid in another currency than ``currency``: their days count in recency and
    # frequency, their amounts are not in ``monetary`` (never converted, never added).
    other_currency_purchases: dict[str, int]
    segment_sizes: dict[str, int]
    segment_cn_sizes: dict[str, int]
    lifecycle_sizes: dict[str, int]
    customers: list[CustomerSegment]


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
    pop = load_population(tx, tables, query, currency, rule or ChurnRule())
    customers, facts, buyers = pop.customers, pop.facts, pop.buyers
    n = len(customers.ids)
    segment, segment_counts = _names(RF_GRID_CELLS, pop.scores.grid_index(), buyers, n)
    segment_cn, cn_counts = _names(CN8_CELLS, pop.scores.cn_index(), buyers, n)
    codes, _ = _names(RFM_CODES, pop.scores.code_index(), buyers, n)
    recency_days = np.full(n, None, dtype=object)
    recency_days[buyers] = pop.recency.tolist()
    lifecycle = [LIFECYCLE_STAGES[code] for code in pop.stages.tolist()]
    frequency = facts.purchase_days.tolist()
    monetary = format_minor_many(facts.net_spend, currency)
    rows = list(
        map(
            CustomerSegment,
            customers.ids, customers.external_refs, customers.owners, customers.regions,
            customers.tiers, lifecycle, codes, segment, segment_cn, recency_days.tolist(),
            frequency, monetary,
        )
    )  # fmt: skip
    stage_counts = np.bincount(pop.stages, minlength=len(LIFECYCLE_STAGES)).tolist()
    return SegmentsReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        currency=currency,
        grid_version=RF_GRID_VERSION,
        cn_map_version=CN8_MAP_VERSION,
        cn_threshold_rule=CN8_THRESHOLD_RULE,
        other_currency_purchases={
            c: count
            for c, count in purchases_by_currency(tx, tables, query).items()
            if c != currency
        },
        segment_sizes=_sizes(RF_GRID_CELLS, segment_counts),
        segment_cn_sizes=_sizes(CN8_CELLS, cn_counts),
        lifecycle_sizes=dict(zip(LIFECYCLE_STAGES, stage_counts, strict=True)),
        customers=rows,
    )


def table_rows(report: SegmentsReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(c) for c in report.customers]

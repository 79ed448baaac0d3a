"""The segments report: attributes, lifecycle stage, RFM scores and both segment maps, as of a date.

RFM facts come from the ``customers`` read model; quintile scores depend on the whole population
and the reference date, so they are computed here at query time, never stored.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import msgspec

from crm_es.app.database import Tx
from crm_es.domain.values import TIER_CURRENCY, Tier, currency_exponent
from crm_es.projections.purchase_history import (
    ChurnRule,
    load_churn_facts,
    load_customers,
    load_purchase_histories,
    rule_status,
)
from crm_es.projections.report_query import ReportQuery
from crm_es.projections.rfm import (
    CN8_MAP_VERSION,
    CN8_THRESHOLD_RULE,
    RF_GRID_VERSION,
    RfmInput,
    RfmScore,
    score_rfm,
)

LOYAL_SEGMENTS = frozenset({"Champions", "Loyal Customers"})
LOYAL_TIERS = frozenset({Tier.GOLD, Tier.PLATINUM})
LIFECYCLE_STAGES = ("prospect", "new", "repeat", "loyal", "churned", "won_back")


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
    if status == "churned":
        return "churned"
    if won_back:
        return "won_back"
    if purchase_days == 0:
        return "prospect"
    if (score is not None and score.segment in LOYAL_SEGMENTS) or tier in LOYAL_TIERS:
        return "loyal"
    return "new" if purchase_days == 1 else "repeat"


def segments_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    currency: str = TIER_CURRENCY,
    rule: ChurnRule | None = None,
) -> SegmentsReport:
    rule = rule or ChurnRule()
    customers = load_customers(tx, tables, query)
    histories = load_purchase_histories(tx, tables, query, currency)
    churn = load_churn_facts(tx, tables, query)
    as_of = query.reference_date
    exponent = currency_exponent(currency)
    inputs = [
        RfmInput(
            customer_id=cid,
            last_purchase=h.days[-1],
            purchase_days=len(h.days),
            net_spend=Decimal(h.net_spend).scaleb(-exponent),
        )
        for cid, h in histories.items()
        if cid in customers and h.days
    ]
    scores = {s.customer_id: s for s in score_rfm(inputs, as_of)}
    rows = []
    for cid, c in customers.items():
        history = histories.get(cid)
        score = scores.get(cid)
        facts = churn.get(cid)
        status = rule_status(history, facts, as_of, rule)
        days = len(history.days) if history else 0
        spend = history.net_spend if history else 0
        rows.append(
            CustomerSegment(
                customer_id=cid,
                external_ref=c.external_ref,
                owner=c.owner,
                region=c.region,
                tier=c.tier,
                lifecycle=lifecycle_stage(status, bool(facts and facts.won_back), days, score,
                                          c.tier),
                rfm=score.code if score else None,
                segment=score.segment if score else None,
                segment_cn=score.segment_cn if score else None,
                recency_days=score.recency_days if score else None,
                frequency=days,
                monetary=f"{Decimal(spend).scaleb(-exponent):.{exponent}f}",
            )
        )  # fmt: skip
    return SegmentsReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        currency=currency,
        grid_version=RF_GRID_VERSION,
        cn_map_version=CN8_MAP_VERSION,
        cn_threshold_rule=CN8_THRESHOLD_RULE,
        segment_sizes=dict(sorted(Counter(r.segment for r in rows if r.segment).items())),
        segment_cn_sizes=dict(sorted(Counter(r.segment_cn for r in rows if r.segment_cn).items())),
        lifecycle_sizes={s: sum(1 for r in rows if r.lifecycle == s) for s in LIFECYCLE_STAGES},
        customers=rows,
    )


def table_rows(report: SegmentsReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(c) for c in report.customers]

"""The churn report: rule status per customer, BG/NBD P(alive) and expected purchases, win-back.

The BG/NBD model is fitted by maximum likelihood on the population of purchasers as of the date
(see :mod:`crm_es.analytics.bgnbd`), with x = repeat purchase days, t_x = time from the first to
the last purchase day and T = time from the first purchase day to the reference date.

Everything is computed for the whole population at once from the columns of
:mod:`crm_es.reports.facts.population` (its churn rule is :mod:`crm_es.analytics.churn_rule`),
so the statuses and win-backs here are the ones the segments report and the KPIs show. The rows
are the purchasers and the customers churned explicitly without a purchase (who have no model
figures).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from crm_es.analytics.bgnbd import expected_purchases, p_alive
from crm_es.analytics.churn_rule import NO_RETURN, STATUS_NAMES, ChurnRule
from crm_es.domain.times import EPOCH, day_number
from crm_es.domain.values import TIER_CURRENCY
from crm_es.reports.facts.buyer_model import (
    MIN_CUSTOMERS_TO_FIT,
    MIN_T_DAYS,
    UNIT_DAYS,
    BgNbdFit,
    TimeUnit,
    buyer_histories,
    fit_buyers,
    rounded,
)
from crm_es.reports.facts.population import Population, load_population
from crm_es.reports.facts.purchase_arrays import explicit_churned
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

# The model's names stay importable from here, where they were defined before the value report
# shared them (crm_es.reports.facts.buyer_model).
__all__ = [
    "MIN_CUSTOMERS_TO_FIT",
    "MIN_T_DAYS",
    "UNIT_DAYS",
    "BgNbdFit",
    "ChurnReport",
    "CustomerChurn",
    "TimeUnit",
    "churn_report",
    "table_rows",
]
_rounded = rounded  # the name earlier tests import


class CustomerChurn(msgspec.Struct, frozen=True):
    customer_id: str
    external_ref: str | None
    owner: str | None
    status: str  # active | at_risk | churned (prospect: won back without ever buying)
    explicit: bool  # churned by a CustomerChurned event rather than by the rule
    won_back: bool  # returned (by the rule or explicitly) within the threshold, not churned since
    won_back_on: str | None  # the latest return, however long ago
    days_since_last_purchase: int | None
    threshold_days: float | None
    x: int
    t_x: float | None  # None without a purchase
    T: float | None
    p_alive: float | None
    expected_purchases: float | None


class ChurnReport(msgspec.Struct, frozen=True):
    as_of: str
    known_at: str
    rule: ChurnRule
    horizon_days: int
    bgnbd: BgNbdFit | None
    status_counts: dict[str, int]
    won_back: int
    customers: list[CustomerChurn]


def _pick(values: list[Any], at: npt.NDArray[np.int64]) -> list[Any]:
    return list(map(values.__getitem__, at.tolist()))


def _day_text(day: int) -> str | None:
    return None if day == NO_RETURN else (EPOCH + timedelta(days=day)).isoformat()


def _churned_without_purchase(pop: Population) -> list[CustomerChurn]:
    """Rows of the customers churned or won back explicitly without any purchase: counted by
    the segments report too, with nothing for the model to say about them."""
    ids, customers = pop.customers.ids, pop.customers
    explicit = explicit_churned(pop.churn, ids)
    touched = np.array([cid in pop.churn for cid in ids], dtype=bool)
    rows = []
    for i in np.flatnonzero(touched & (pop.facts.purchase_days == 0)).tolist():
        rows.append(
            CustomerChurn(
                ids[i], customers.external_refs[i], customers.owners[i],
                STATUS_NAMES[int(pop.statuses[i])], bool(explicit[i]), bool(pop.won_back[i]),
                _day_text(int(pop.returned[i])), None, None, 0, None, None, None, None,
            )
        )  # fmt: skip
    return rows


def churn_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    time_unit: TimeUnit = "week",
    horizon_days: int = 90,
    rule: ChurnRule | None = None,
) -> ChurnReport:
    rule = rule or ChurnRule()
    as_of = query.reference_date
    pop = load_population(tx, tables, query, TIER_CURRENCY, rule)
    customers, facts, churn, thresholds, statuses = (
        pop.customers,
        pop.facts,
        pop.churn,
        pop.thresholds,
        pop.statuses,
    )
    # Customers with a purchase day, in profile order.
    buyers = pop.buyers
    last = facts.last_day[buyers]
    histories = buyer_histories(pop, as_of, time_unit)
    xs, t_xs, ts = histories.xs, histories.t_xs, histories.ts

    fit: BgNbdFit | None = None
    alive: list[float | None] = [None] * buyers.size
    expected: list[float | None] = [None] * buyers.size
    fitted = fit_buyers(histories)
    if fitted is not None:
        params, fit = fitted
        horizon = horizon_days / histories.unit_days
        with np.errstate(all="ignore"):  # a degenerate fit can overflow; reported as null
            alive = rounded(p_alive(params, xs, t_xs, ts))
            expected = rounded(expected_purchases(params, horizon, xs, t_xs, ts))

    ids, refs, owners = (_pick(column, buyers) for column in customers[:3])
    status = [STATUS_NAMES[code] for code in statuses[buyers].tolist()]
    explicit = explicit_churned(churn, ids).tolist()
    returned = pop.returned[buyers].tolist()
    rows = list(
        map(
            CustomerChurn,
            ids,
            refs,
            owners,
            status,
            explicit,
            pop.won_back[buyers].tolist(),
            [_day_text(day) for day in returned],
            (day_number(as_of) - last).tolist(),
            thresholds[buyers].tolist(),
            (facts.purchase_days[buyers] - 1).tolist(),
            t_xs.tolist(),
            ts.tolist(),
            alive,
            expected,
        )
    )
    rows = sorted(rows + _churned_without_purchase(pop), key=lambda row: row.customer_id)
    counts = Counter(row.status for row in rows)
    return ChurnReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        rule=rule,
        horizon_days=horizon_days,
        bgnbd=fit,
        status_counts={s: counts[s] for s in ("active", "at_risk", "churned")},
        won_back=sum(row.won_back for row in rows),
        customers=rows,
    )


def table_rows(report: ChurnReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(c) for c in report.customers]

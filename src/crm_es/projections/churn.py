"""The churn report: rule status per customer, BG/NBD P(alive) and expected purchases, win-back.

The BG/NBD model is fitted by maximum likelihood on the population of purchasers as of the date
(see :mod:`crm_es.projections.bgnbd`), with x = repeat purchase days, t_x = time from the first to
the last purchase day and T = time from the first purchase day to the reference date.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec
import numpy as np

from crm_es.app.database import Tx
from crm_es.domain.values import TIER_CURRENCY
from crm_es.projections.bgnbd import expected_purchases, fit_bgnbd, p_alive
from crm_es.projections.purchase_history import (
    ChurnRule,
    churn_threshold_days,
    load_churn_facts,
    load_customers,
    load_purchase_histories,
    rule_status,
)
from crm_es.projections.report_query import ReportQuery

TimeUnit = Literal["day", "week"]
UNIT_DAYS: Final[dict[str, float]] = {"day": 1.0, "week": 7.0}
# A customer whose first purchase is on the reference day has T = 0; the model needs T > 0.
MIN_T_DAYS: Final = 0.5
MIN_CUSTOMERS_TO_FIT: Final = 10


class BgNbdFit(msgspec.Struct, frozen=True):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool
    customers: int
    time_unit: str


class CustomerChurn(msgspec.Struct, frozen=True):
    customer_id: str
    external_ref: str | None
    owner: str | None
    status: str  # active | at_risk | churned
    explicit: bool  # churned by a CustomerChurned event rather than by the rule
    won_back: bool
    days_since_last_purchase: int | None
    threshold_days: float | None
    x: int
    t_x: float
    T: float
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


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _finite(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def churn_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    time_unit: TimeUnit = "week",
    horizon_days: int = 90,
    rule: ChurnRule | None = None,
) -> ChurnReport:
    rule = rule or ChurnRule()
    unit = UNIT_DAYS[time_unit]
    as_of = query.reference_date
    customers = load_customers(tx, tables, query)
    histories = load_purchase_histories(tx, tables, query, TIER_CURRENCY)
    facts = load_churn_facts(tx, tables, query)
    ids = [cid for cid in customers if (h := histories.get(cid)) and h.days]
    xs = np.array([len(histories[c].days) - 1 for c in ids], dtype=np.float64)
    t_xs = (
        np.array([(histories[c].days[-1] - histories[c].days[0]).days for c in ids], float) / unit
    )
    ts = (
        np.array(
            [max((as_of - histories[c].days[0]).days, MIN_T_DAYS) for c in ids], dtype=np.float64
        )
        / unit
    )

    fit: BgNbdFit | None = None
    alive: list[float | None] = [None] * len(ids)
    expected: list[float | None] = [None] * len(ids)
    if len(ids) >= MIN_CUSTOMERS_TO_FIT:
        params = fit_bgnbd(xs, t_xs, ts)
        fit = BgNbdFit(
            r=params.r, alpha=params.alpha, a=params.a, b=params.b,
            log_likelihood=params.log_likelihood, converged=params.converged,
            customers=params.n_customers, time_unit=time_unit,
        )  # fmt: skip
        with np.errstate(all="ignore"):  # a degenerate fit can overflow; reported as null
            alive = _finite(p_alive(params, xs, t_xs, ts))
            expected = _finite(expected_purchases(params, horizon_days / unit, xs, t_xs, ts))

    rows = []
    for i, cid in enumerate(ids):
        history, c, f = histories[cid], customers[cid], facts.get(cid)
        rows.append(
            CustomerChurn(
                customer_id=cid,
                external_ref=c.external_ref,
                owner=c.owner,
                status=rule_status(history, f, as_of, rule),
                explicit=bool(f and f.explicit_churned),
                won_back=bool(f and f.won_back),
                days_since_last_purchase=(as_of - history.days[-1]).days,
                threshold_days=churn_threshold_days(history.days, rule),
                x=int(xs[i]),
                t_x=float(t_xs[i]),
                T=float(ts[i]),
                p_alive=_rounded(alive[i]),
                expected_purchases=_rounded(expected[i]),
            )
        )
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("active", "at_risk", "churned")}
    return ChurnReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        rule=rule,
        horizon_days=horizon_days,
        bgnbd=fit,
        status_counts=counts,
        won_back=sum(1 for r in rows if r.won_back),
        customers=rows,
    )


def table_rows(report: ChurnReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(c) for c in report.customers]

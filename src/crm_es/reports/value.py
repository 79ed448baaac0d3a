"""The value report: each buyer's expected discounted lifetime value (CLV) over a horizon, in money.

Two models multiply (:func:`crm_es.analytics.gamma_gamma.expected_clv` says how and why): the
BG/NBD forecasts how many purchase days each buyer still has in the horizon — the very fit of the
churn report for the same query and time unit (:mod:`crm_es.reports.facts.buyer_model`) — and
the Gamma-Gamma model what each will be worth, from the mean value m̄ of the customer's repeat
purchase days (:mod:`crm_es.reports.facts.transaction_spend`), shrunk towards the population's
mean the fewer of them there are. One-time buyers get the population's mean.

Money is the store's currency (``TIER_CURRENCY``), never converted: a buyer with any purchase
or refund in another currency by the cut has no spend figures and no CLV, is left out of the
Gamma-Gamma fit and the deciles, and is counted (``other_currency``); their purchase days still
count in the BG/NBD, as they do in the churn report. Repeat buyers whose repeat days were worth
nothing (free or refunded orders) are left out of the fit, which needs m̄ > 0, and counted
(``zero_repeat_spend``); their expected spend is the formula's at m̄ = 0. A customer churned
explicitly (moved away, contract ended: observed, not inferred) expects no purchases and has a
CLV of 0, whatever the model would say; their rows say ``explicit``.

The deciles rank the buyers with a CLV from the highest (decile 1) down, ties by customer id,
ten groups as equal as numpy's ``array_split`` makes them; every CLV is rounded to the
currency's minor unit first, so the deciles' totals add up to the total exactly.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from crm_es.analytics.bgnbd import expected_purchases
from crm_es.analytics.churn_rule import STATUS_NAMES, ChurnRule
from crm_es.analytics.gamma_gamma import (
    CLV_PERIOD_DAYS,
    GammaGammaParams,
    SpendCorrelation,
    conditional_expected_spend,
    expected_clv,
    fit_gamma_gamma,
    spend_frequency_correlation,
)
from crm_es.analytics.rfm import id_ranks
from crm_es.domain.errors import InvalidValue
from crm_es.domain.values import TIER_CURRENCY, currency_exponent, format_minor_many
from crm_es.reports.facts.buyer_model import (
    UNIT_DAYS,
    BgNbdFit,
    TimeUnit,
    buyer_histories,
    fit_buyers,
    rounded,
)
from crm_es.reports.facts.population import load_population
from crm_es.reports.facts.purchase_arrays import explicit_churned
from crm_es.reports.facts.transaction_spend import load_transaction_spend
from crm_es.reports.query import ReportQuery
from crm_es.store.database import Tx

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Below this many repeat buyers in the store's currency the Gamma-Gamma fit is not attempted.
MIN_REPEAT_BUYERS_TO_FIT: Final = 10
DECILES: Final = 10
MAX_HORIZON_DAYS: Final = 3650


class GammaGammaFit(msgspec.Struct, frozen=True):
    p: float
    q: float
    gamma: float  # in major units of the currency (yuan), like mean_spend
    mean_spend: str | None  # the population's mean value of a purchase day, p γ / (q − 1)
    log_likelihood: float  # of the m̄ in major units
    converged: bool
    customers: int


class ClvDecile(msgspec.Struct, frozen=True):
    decile: int  # 1 = the tenth of buyers with the highest CLV
    customers: int
    clv_total: str
    share: float | None  # of the total CLV; None when the total is 0
    clv_min: str | None
    clv_max: str | None


class CustomerValue(msgspec.Struct, frozen=True):
    customer_id: str
    external_ref: str | None
    owner: str | None
    clv: str | None  # expected discounted value over the horizon, in the report's currency
    decile: int | None
    expected_purchases: float | None  # purchase days in the horizon (0 if churned explicitly)
    expected_spend: str | None  # expected value of one purchase day, E[Z | x, m̄]
    x: int  # repeat purchase days
    mean_spend: str | None  # m̄: the mean value of the repeat purchase days
    status: str  # the churn rule's: active | at_risk | churned
    explicit: bool  # churned by a CustomerChurned event
    other_currency: bool  # paid in another currency: no spend figures, no CLV


class ValueReport(msgspec.Struct, frozen=True):
    as_of: str
    known_at: str
    currency: str
    time_unit: str
    horizon_days: int
    discount_rate: float  # annual
    period_days: int  # the horizon is summed in periods of this many days
    rule: ChurnRule
    bgnbd: BgNbdFit | None
    gamma_gamma: GammaGammaFit | None
    spend_check: SpendCorrelation  # Pearson r of x and m̄ over the customers fitted
    buyers: int
    other_currency: int
    zero_repeat_spend: int
    total_clv: str | None
    # A tuple, not a list: the ten deciles are a summary, which --sort and --limit leave whole.
    deciles: tuple[ClvDecile, ...]
    customers: list[CustomerValue]


def value_report(
    tx: Tx,
    tables: dict[str, str],
    query: ReportQuery,
    time_unit: TimeUnit = "week",
    horizon_days: int = 365,
    discount_rate: float = 0.10,
    rule: ChurnRule | None = None,
    currency: str = TIER_CURRENCY,
) -> ValueReport:
    if time_unit not in UNIT_DAYS:
        raise InvalidValue("time_unit", time_unit, "must be one of: " + ", ".join(UNIT_DAYS))
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise InvalidValue("horizon_days", horizon_days, f"must be 1 to {MAX_HORIZON_DAYS}")
    if not (math.isfinite(discount_rate) and 0.0 <= discount_rate <= 1.0):
        raise InvalidValue("discount_rate", discount_rate, "must be an annual rate from 0 to 1")
    rule = rule or ChurnRule()
    pop = load_population(tx, tables, query, currency, rule)
    ids, buyers = pop.customers.ids, pop.buyers
    histories = buyer_histories(pop, query.reference_date, time_unit)
    spend = load_transaction_spend(tx, tables, query, currency, ids, pop.facts.first_day)
    unit = 10 ** currency_exponent(currency)
    xs = histories.xs
    repeat = xs > 0
    other = spend.other_currency[buyers]
    explicit = explicit_churned(pop.churn, ids)[buyers]
    net = np.asarray([pop.facts.net_spend[i] for i in buyers.tolist()], dtype=np.float64)
    repeat_value = (net - spend.first_day_spend[buyers]) / unit  # major units
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_spend = np.where(repeat & ~other, repeat_value / xs, np.nan)
    fitted_spend = repeat & ~other & (mean_spend > 0)
    spend_check = spend_frequency_correlation(xs[fitted_spend], mean_spend[fitted_spend])

    expected = np.full(buyers.size, np.nan)
    per_day = np.full(buyers.size, np.nan)
    clv = np.full(buyers.size, np.nan)
    bgnbd = fit_buyers(histories)
    gamma_gamma: GammaGammaParams | None = None
    if int(fitted_spend.sum()) >= MIN_REPEAT_BUYERS_TO_FIT:
        gamma_gamma = fit_gamma_gamma(xs[fitted_spend], mean_spend[fitted_spend])
        observed = np.where(~other, np.nan_to_num(np.maximum(mean_spend, 0.0)), 0.0)
        with np.errstate(all="ignore"):
            per_day = np.where(other, np.nan, conditional_expected_spend(gamma_gamma, xs, observed))
    if bgnbd is not None:
        params = bgnbd[0]
        horizon = horizon_days / histories.unit_days
        with np.errstate(all="ignore"):  # a degenerate fit can overflow; reported as null
            expected = expected_purchases(params, horizon, xs, histories.t_xs, histories.ts)
            model = ~other & np.isfinite(per_day)
            clv[model] = expected_clv(
                params, per_day[model], xs[model], histories.t_xs[model], histories.ts[model],
                horizon_days, histories.unit_days, discount_rate,
            )  # fmt: skip
        expected[explicit] = 0.0  # observed churn overrides the model
        if gamma_gamma is not None:
            clv[explicit & ~other] = 0.0

    clv_minor = _minor_units(clv * unit)
    deciles, decile_of = _deciles(clv_minor, id_ranks(ids)[buyers], currency)
    has_clv = [v is not None for v in clv_minor]
    total = sum(v for v in clv_minor if v is not None) if any(has_clv) else None
    rows = list(
        map(
            CustomerValue,
            [ids[i] for i in buyers.tolist()],
            [pop.customers.external_refs[i] for i in buyers.tolist()],
            [pop.customers.owners[i] for i in buyers.tolist()],
            _money(clv_minor, currency),
            decile_of,
            rounded(expected),
            _money(_minor_units(per_day * unit), currency),
            xs.astype(np.int64).tolist(),
            _money(_minor_units(mean_spend * unit), currency),
            [STATUS_NAMES[code] for code in pop.statuses[buyers].tolist()],
            explicit.tolist(),
            other.tolist(),
        )
    )
    return ValueReport(
        as_of=query.as_of_iso,
        known_at=query.known_at_iso,
        currency=currency,
        time_unit=time_unit,
        horizon_days=horizon_days,
        discount_rate=discount_rate,
        period_days=CLV_PERIOD_DAYS,
        rule=rule,
        bgnbd=bgnbd[1] if bgnbd else None,
        gamma_gamma=_fit_shown(gamma_gamma, currency),
        spend_check=spend_check,
        buyers=int(buyers.size),
        other_currency=int(other.sum()),
        zero_repeat_spend=int((repeat & ~other & ~fitted_spend).sum()),
        total_clv=_money([total], currency)[0],
        deciles=deciles,
        customers=sorted(rows, key=lambda row: row.customer_id),
    )


def table_rows(report: ValueReport) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(c) for c in report.customers]


def _minor_units(values: FloatArray) -> list[int | None]:
    """Each amount rounded to whole minor units (half to even), None where not finite."""
    finite = np.isfinite(values)
    out: list[int | None] = [None] * values.size
    for i, v in zip(np.flatnonzero(finite).tolist(), np.rint(values[finite]).tolist(), strict=True):
        out[i] = int(v)
    return out


def _money(minor: list[int | None], currency: str) -> list[str | None]:
    present = [v for v in minor if v is not None]
    texts = iter(format_minor_many(present, currency))
    return [None if v is None else next(texts) for v in minor]


def _fit_shown(params: GammaGammaParams | None, currency: str) -> GammaGammaFit | None:
    if params is None:
        return None
    unit = 10 ** currency_exponent(currency)
    mean = params.mean_spend
    [mean_text] = _money(_minor_units(np.array([mean * unit])), currency)
    return GammaGammaFit(
        p=params.p, q=params.q, gamma=params.gamma, mean_spend=mean_text,
        log_likelihood=params.log_likelihood, converged=params.converged,
        customers=params.n_customers,
    )  # fmt: skip


def _deciles(
    clv_minor: list[int | None], id_rank: IntArray, currency: str
) -> tuple[tuple[ClvDecile, ...], list[int | None]]:
    """The ten CLV deciles (empty when nobody has a CLV) and each buyer's decile."""
    decile_of: list[int | None] = [None] * len(clv_minor)
    ranked = [i for i, v in enumerate(clv_minor) if v is not None]
    if not ranked:
        return (), decile_of
    values = [clv_minor[i] or 0 for i in ranked]
    # Highest first, ties by customer id; float keys order whole minor units exactly to 2^53.
    order = np.lexsort((id_rank[ranked], -np.asarray(values, dtype=np.float64)))
    total = sum(values)
    deciles = []
    for number, group in enumerate(np.array_split(order, DECILES), 1):
        members = [values[k] for k in group.tolist()]
        for k in group.tolist():
            decile_of[ranked[k]] = number
        low, high = (min(members), max(members)) if members else (None, None)
        texts = _money([sum(members), low, high], currency)
        deciles.append(
            ClvDecile(
                decile=number, customers=len(members), clv_total=texts[0] or "",
                share=round(sum(members) / total, 6) if total else None,
                clv_min=texts[1], clv_max=texts[2],
            )
        )  # fmt: skip
    return tuple(deciles), decile_of

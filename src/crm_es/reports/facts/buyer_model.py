"""The BG/NBD model of a population's buyers: their histories in the model's terms, its fit, and
the rounding of its figures. Shared by the churn and value reports, so both fit the same model
on the same histories and show the same parameters for one query.

Per customer with a purchase day, in one time unit (day or week): x = repeat purchase days,
t_x = time from the first to the last purchase day, T = time from the first purchase day to the
reference date (at least half a day: the model needs T > 0). Purchase days in every currency
count: buying is buying, whatever the money.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal, NamedTuple

import msgspec
import numpy as np

from crm_es.analytics.bgnbd import BgNbdParams, FloatArray, fit_bgnbd
from crm_es.domain.times import day_number
from crm_es.reports.facts.population import Population

__all__ = [
    "MIN_CUSTOMERS_TO_FIT",
    "MIN_T_DAYS",
    "UNIT_DAYS",
    "BgNbdFit",
    "BuyerHistories",
    "TimeUnit",
    "buyer_histories",
    "fit_buyers",
    "rounded",
]

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


class BuyerHistories(NamedTuple):
    """(x, t_x, T) of each buyer of a :class:`Population`, aligned with ``pop.buyers``."""

    xs: FloatArray
    t_xs: FloatArray
    ts: FloatArray
    time_unit: TimeUnit

    @property
    def unit_days(self) -> float:
        return UNIT_DAYS[self.time_unit]


def buyer_histories(pop: Population, today: date, time_unit: TimeUnit) -> BuyerHistories:
    """Each buyer's (x, t_x, T) as of ``today`` in ``time_unit``."""
    unit = UNIT_DAYS[time_unit]
    facts, buyers = pop.facts, pop.buyers
    first, last = facts.first_day[buyers], facts.last_day[buyers]
    xs = (facts.purchase_days[buyers] - 1).astype(np.float64)
    t_xs = (last - first).astype(np.float64) / unit
    ts = np.maximum((day_number(today) - first).astype(np.float64), MIN_T_DAYS) / unit
    return BuyerHistories(xs, t_xs, ts, time_unit)


def fit_buyers(histories: BuyerHistories) -> tuple[BgNbdParams, BgNbdFit] | None:
    """The BG/NBD fitted on the buyers, as parameters and as a report shows them; None below
    :data:`MIN_CUSTOMERS_TO_FIT` buyers (no fit is worth showing)."""
    if histories.xs.size < MIN_CUSTOMERS_TO_FIT:
        return None
    params = fit_bgnbd(histories.xs, histories.t_xs, histories.ts)
    fit = BgNbdFit(
        r=params.r, alpha=params.alpha, a=params.a, b=params.b,
        log_likelihood=params.log_likelihood, converged=params.converged,
        customers=params.n_customers, time_unit=histories.time_unit,
    )  # fmt: skip
    return params, fit


def rounded(values: FloatArray) -> list[float | None]:
    """``round(v, 6)`` of each value (Python's: the double nearest to the exact value rounded to
    6 decimals, half to even), None where not finite.

    Vectorised: k = the nearest integer to v·10⁶ and k / 10⁶ (one correctly rounded division, so
    the double nearest to k·10⁻⁶, as ``round`` gives). v·10⁶ in floating point can only pick a
    different k than the exact product when it lies within a few ulps of a half-integer; those
    values, and huge ones, are left to ``round`` itself.
    """
    finite = np.isfinite(values)
    with np.errstate(all="ignore"):
        scaled = values * 1e6
        nearest = np.round(scaled) / 1e6
        off_half = np.abs(scaled - np.floor(scaled) - 0.5)
        risky = finite & ((off_half <= 4 * np.spacing(np.abs(scaled))) | (np.abs(values) >= 1e9))
    out: list[float | None] = nearest.tolist()
    for i in np.flatnonzero(risky).tolist():
        out[i] = round(float(values[i]), 6)
    for i in np.flatnonzero(~finite).tolist():
        out[i] = None
    return out

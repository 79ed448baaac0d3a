"""Gamma-Gamma model of spend per transaction, and the expected discounted customer lifetime value.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis"
(JMR 42(4)), after Colombo & Jiang (1999). Inputs, one entry per customer with x ≥ 1 repeat
transactions:

* ``x`` repeat transactions (purchase days after the first, as in :mod:`.bgnbd`),
* ``m`` their mean value m̄ (money, any positive unit; the fit is scale-aware, see below).

The model: each transaction value z ~ Gamma(shape p, rate ν), ν varies across customers as
ν ~ Gamma(shape q, rate γ), and the values are independent of the transaction process (which
:mod:`.bgnbd` models). Then x·m̄ | ν ~ Gamma(p x, ν) and, integrating ν out, per customer

    ln f(m̄ | x) = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x
                  − (px+q) ln(γ + x m̄)

computed with gammaln because px is in the hundreds for a frequent buyer, where Γ overflows.
The posterior of ν is Gamma(px+q, γ + x m̄), so E[Z | x, m̄] = p (γ + x m̄) / (px + q − 1): a
weighted mean of the population mean p γ / (q − 1) and the customer's own m̄, the customer's
weight p x / (px + q − 1) growing with x.

The model assumes spend and frequency are independent; :func:`spend_frequency_correlation`
gives the check practitioners report (Pearson r of x and m̄ over the customers fitted).
"""

from __future__ import annotations

import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln
from scipy.stats import pearsonr

from crm_es.analytics.bgnbd import BgNbdParams, expected_purchases
from crm_es.analytics.log_space_fit import FALLBACK_LOG_BOX, maximise

__all__ = [
    "CLV_PERIOD_DAYS",
    "DAYS_PER_YEAR",
    "GammaGammaParams",
    "SpendCorrelation",
    "conditional_expected_spend",
    "expected_clv",
    "fit_gamma_gamma",
    "log_likelihood_terms",
    "simulate_gamma_gamma",
    "spend_frequency_correlation",
]

FloatArray = npt.NDArray[np.float64]

# Start on data scaled to mean 1: p = 1, q = 2, γ = 1 has population mean p γ / (q − 1) = 1,
# the data's own, and a finite variance-free guess at heterogeneity; deterministic.
_START: Final = (0.0, math.log(2.0), 0.0)

# CLV: the horizon is cut into periods of this many days, each period's expected purchases
# discounted at its end; a year has this many days for an annual rate.
CLV_PERIOD_DAYS: Final = 30
DAYS_PER_YEAR: Final = 365.0


class GammaGammaParams(msgspec.Struct, frozen=True):
    """Fitted p, q, γ (γ in the unit of the m̄ fitted) and the summed log-likelihood there."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    converged: bool
    n_customers: int

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.p, self.q, self.gamma)

    @property
    def mean_spend(self) -> float:
        """E[Z] = p γ / (q − 1) over the population; infinite when q ≤ 1."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else math.inf


class SpendCorrelation(msgspec.Struct, frozen=True):
    """The model's assumption check: Pearson r of frequency x and mean spend m̄ (None when it
    is undefined: under 3 customers, or x or m̄ constant) and its two-sided p-value."""

    pearson_r: float | None
    p_value: float | None
    customers: int


def log_likelihood_terms(
    params3: tuple[float, float, float], x: npt.ArrayLike, m: npt.ArrayLike
) -> FloatArray:
    """Per-customer ln f(m̄ | x) at ``params3 = (p, q, gamma)``."""
    xs, ms = _as_arrays(x, m)
    return _terms(params3, xs, ms)


def fit_gamma_gamma(x: npt.ArrayLike, m: npt.ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood p, q, γ from repeat customers' (x, m̄).

    Money has an arbitrary unit (yuan or fen), and γ scales with it while p and q do not: the
    fit runs on m̄ divided by its mean, so the same start and tolerances suit any currency, and
    γ is scaled back. The mean negative log-likelihood is minimised over log-parameters with
    L-BFGS-B and an analytic gradient from a fixed start, with Nelder-Mead as the fallback when
    L-BFGS-B fails at a plausible point (as :func:`crm_es.analytics.bgnbd.fit_bgnbd` does).
    The customers are sorted first, so the answer does not depend on their order to the last
    bit. ``converged`` is True only at a proper interior maximum (inside the box, the likelihood
    curving down in every direction); otherwise the parameters are the optimiser's last point
    and must not be used for forecasts.
    """
    xs, ms = _sorted(*_as_arrays(x, m))
    if xs.size == 0:
        raise ValueError("the Gamma-Gamma model needs at least one repeat customer")
    scale = float(ms.mean())
    us = ms / scale

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        return _negative_mean_ll_and_gradient(log_params, xs, us)

    # On data scaled to mean 1 a real optimum lies well inside e^±10 (p, q: shapes of spend and
    # of its heterogeneity; γ ≈ (q − 1) / p). The optimiser also stops beyond, where a likelihood
    # rising towards a boundary has flattened (3 customers: q ≈ e^18 with curvature 3e-4), so an
    # optimum outside this box never counts as converged.
    fit = maximise(objective, np.array(_START), proper_box=FALLBACK_LOG_BOX)
    converged = fit.converged
    p, q, gamma_scaled = (float(v) for v in np.exp(fit.log_params))
    gamma = gamma_scaled * scale
    # Summed at the answer on the data as given: the density of m̄ is that of m̄/scale over
    # scale, so the scaled optimum's value is not the one to report.
    log_likelihood = float(_terms((p, q, gamma), xs, ms).sum())
    return GammaGammaParams(p, q, gamma, log_likelihood, converged, int(xs.size))


def conditional_expected_spend(
    params: GammaGammaParams, x: npt.ArrayLike, m: npt.ArrayLike
) -> FloatArray:
    """E[Z | x, m̄] = p (γ + x m̄) / (p x + q − 1) for each customer.

    x = 0 (no repeat transaction yet) gives the population mean p γ / (q − 1), whatever m̄ says.
    NaN where the expectation does not exist (p x + q − 1 ≤ 0: only when q ≤ 1 and x is small).
    m̄ may be 0 (repeat transactions that were free or refunded): the formula's value then is
    the population's evidence shrunk by a customer who spent nothing.
    """
    xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
    ms = np.atleast_1d(np.asarray(m, dtype=np.float64))
    xs, ms = np.broadcast_arrays(xs, ms)
    if np.any(xs < 0) or np.any(~np.isfinite(xs)):
        raise ValueError("x must be non-negative and finite")
    if np.any(ms < 0) or np.any(~np.isfinite(ms)):
        raise ValueError("m̄ must be non-negative and finite")
    p, q, gamma = params.as_tuple()
    denominator = p * xs + q - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        spend = p * (gamma + xs * ms) / denominator
    return np.asarray(np.where(denominator > 0, spend, np.nan), dtype=np.float64)


def spend_frequency_correlation(x: npt.ArrayLike, m: npt.ArrayLike) -> SpendCorrelation:
    """Pearson correlation of x and m̄: near 0 where the model's independence assumption holds.

    FHL (2005) report 0.11 on CDNOW and proceed; a strong correlation means the CLV, which
    multiplies the two models' forecasts, is biased.
    """
    xs, ms = _sorted(*_as_arrays(x, m))
    n = int(xs.size)
    if n < 3 or np.all(xs == xs[0]) or np.all(ms == ms[0]):
        return SpendCorrelation(None, None, n)
    result = pearsonr(xs, ms)
    return SpendCorrelation(float(result.statistic), float(result.pvalue), n)


def expected_clv(
    bgnbd: BgNbdParams,
    spend: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    horizon_days: float,
    unit_days: float,
    annual_discount_rate: float,
) -> FloatArray:
    """Expected discounted value of each customer's purchases in the next ``horizon_days``.

    The formula::

        CLV = E[Z | x, m̄] · Σ_{k=1..K} (E[X(t_k)] − E[X(t_{k−1})]) / (1 + d)^(t_k / 365)

    with t_k = min(k · 30, H) days (K = ⌈H / 30⌉ periods, t_0 = 0), E[X(t)] the BG/NBD expected
    purchases in (T, T + t] (:func:`crm_es.analytics.bgnbd.expected_purchases`, ``x, t_x, T``
    in units of ``unit_days`` days), ``spend`` the Gamma-Gamma E[Z | x, m̄] and d the annual
    discount rate.

    Why this one: the Gamma-Gamma model makes spend independent of the purchase process, so the
    expected discounted spend is the expected spend per purchase times the discounted expected
    number of purchases, and the latter is Σ of each period's expected purchases (the increments
    of E[X(t)]) times its discount factor. FHL (2005)'s closed form (DERT) is for an infinite
    horizon under continuous discounting; a finite horizon has no closed form, and the sum is
    the Stieltjes sum of ∫ (1+d)^(−t) dE[X(t)]. Discounting each period at its end (as the
    usual CLV tools do) undervalues by at most a period's discount, (1+d)^(30/365) − 1: 0.8 %
    at d = 10 %. With d = 0 the sum telescopes to E[X(H)] exactly. NaN spend gives NaN.
    """
    if not horizon_days >= 0 or not math.isfinite(horizon_days):
        raise ValueError(f"horizon must be >= 0 days, got {horizon_days}")
    if not annual_discount_rate > -1.0 or not math.isfinite(annual_discount_rate):
        raise ValueError(f"the annual discount rate must be > -1, got {annual_discount_rate}")
    spends = np.atleast_1d(np.asarray(spend, dtype=np.float64))
    rows = np.column_stack(np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, np.float64))
                                                 for v in (x, t_x, T))))  # fmt: skip
    if rows.shape[0] != spends.size:
        raise ValueError("spend and the histories must have one entry per customer")
    # Day-granular histories repeat: forecast each distinct (x, t_x, T) once.
    distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
    ends = [min(k * CLV_PERIOD_DAYS, horizon_days)
            for k in range(1, math.ceil(horizon_days / CLV_PERIOD_DAYS) + 1)]  # fmt: skip
    discounted = np.zeros(distinct.shape[0])
    before = np.zeros(distinct.shape[0])
    for end in ends:
        upto = expected_purchases(bgnbd, end / unit_days, *distinct.T)
        discounted += (upto - before) / (1.0 + annual_discount_rate) ** (end / DAYS_PER_YEAR)
        before = upto
    return np.asarray(spends * discounted[inverse.ravel()], dtype=np.float64)


def simulate_gamma_gamma(
    p: float, q: float, gamma: float, x: npt.ArrayLike, rng: np.random.Generator
) -> FloatArray:
    """Draw m̄ for customers with ``x`` transactions each from the generative process.

    ν ~ Gamma(q, rate γ) per customer; the sum of x values ~ Gamma(p x, rate ν), exactly the
    sum of x draws of Gamma(p, ν), so one draw per customer; m̄ = sum / x.
    """
    if min(p, q, gamma) <= 0:
        raise ValueError("Gamma-Gamma parameters must all be positive")
    xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if np.any(xs < 1) or np.any(xs != np.floor(xs)):
        raise ValueError("x must be whole numbers >= 1")
    nu = rng.gamma(shape=q, scale=1.0 / gamma, size=xs.size)
    totals = rng.gamma(shape=p * xs, scale=1.0 / nu)
    return np.asarray(totals / xs, dtype=np.float64)


# --- internals ---


def _as_arrays(x: npt.ArrayLike, m: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """1-D float arrays of repeat customers' histories; others the model cannot have produced."""
    xs, ms = np.broadcast_arrays(
        np.atleast_1d(np.asarray(x, dtype=np.float64)),
        np.atleast_1d(np.asarray(m, dtype=np.float64)),
    )
    if xs.ndim != 1:
        raise ValueError("x and m must be scalars or 1-D arrays")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ms))):
        raise ValueError("x and m must be finite")
    if np.any(xs < 1) or np.any(xs != np.floor(xs)):
        raise ValueError("x (repeat transactions) must be whole numbers >= 1")
    if np.any(ms <= 0):
        raise ValueError("mean spend m must be positive (a Gamma variable)")
    return xs, ms


def _sorted(xs: FloatArray, ms: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The customers in (x, m̄) order: floating-point sums then do not depend on the order the
    store listed them in, so a report for (as_of, known_at) stays the same to the last bit when
    customers registered later change that order."""
    order = np.lexsort((ms, xs))
    return xs[order], ms[order]


def _terms(params3: tuple[float, float, float], xs: FloatArray, ms: FloatArray) -> FloatArray:
    p, q, gamma = params3
    px = p * xs
    terms = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(ms)
        + px * np.log(xs)
        - (px + q) * np.log(gamma + xs * ms)
    )
    return np.asarray(terms, dtype=np.float64)


def _negative_mean_ll_and_gradient(
    log_params: FloatArray, xs: FloatArray, ms: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient with respect to the log-parameters."""
    p, q, gamma = (float(v) for v in np.exp(log_params))
    px = p * xs
    log_total = np.log(gamma + xs * ms)
    value = -float(_terms((p, q, gamma), xs, ms).mean())
    psi_sum = digamma(px + q)
    d_p = np.mean(xs * (psi_sum - digamma(px) + np.log(ms) + np.log(xs) - log_total))
    d_q = np.mean(psi_sum - log_total) - digamma(q) + math.log(gamma)
    d_gamma = q / gamma - np.mean((px + q) / (gamma + xs * ms))
    # Chain rule for θ = e^φ: d/dφ = θ · d/dθ.
    gradient = -np.array([d_p * p, d_q * q, d_gamma * gamma], dtype=np.float64)
    return value, gradient

"""BG/NBD buy-till-you-die model (Fader, Hardie & Lee 2005): fit, P(alive), expected purchases.

Own numpy/scipy code so the churn read model has no model-library dependency and stays reproducible.
Inputs follow the BTYD convention, one entry per customer, all in one time unit (e.g. weeks):

* ``x``   repeat purchases (purchase days after the first one),
* ``t_x`` time of the last purchase since the first one (0 when ``x == 0``),
* ``T``   time from the first purchase to the end of observation.

The model: while alive, a customer buys as a Poisson process with rate λ ~ Gamma(shape r, rate α);
after each repeat purchase they drop out for good with probability p ~ Beta(a, b). Everything is
computed in log space (gammaln, betaln, logaddexp) because x can be in the hundreds, where Γ(r + x)
and (α + T)^(r + x) overflow a float.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from crm_es.analytics.log_space_fit import LOG_BOUND, maximise

__all__ = [
    "BgNbdParams",
    "expected_purchases",
    "fit_bgnbd",
    "log_likelihood_terms",
    "p_alive",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class BgNbdParams(msgspec.Struct, frozen=True):
    """Fitted BG/NBD parameters with the summed log-likelihood at the optimum."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool
    n_customers: int

    def as_tuple(self) -> tuple[float, float, float, float]:
        """(r, alpha, a, b), the order :func:`log_likelihood_terms` takes."""
        return (self.r, self.alpha, self.a, self.b)


def log_likelihood_terms(
    params4: tuple[float, float, float, float],
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Per-customer log-likelihood at ``params4 = (r, alpha, a, b)`` (FHL 2005, eq. 6)."""
    xs, txs, ts = _as_arrays(x, t_x, T)
    return _log_likelihood_terms(params4, _prepare(xs, txs, ts, np.ones(xs.size)))


def fit_bgnbd(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> BgNbdParams:
    """Maximum-likelihood fit of r, alpha, a, b.

    Identical (x, t_x, T) rows are merged and weighted by their count (with day-granular data most
    customers share a few rows), then the mean negative log-likelihood is minimised over the
    log-parameters with L-BFGS-B and an analytic gradient, starting from all parameters = 1 so the
    fit is deterministic. If L-BFGS-B fails (see :mod:`.log_space_fit`), Nelder-Mead is
    tried from the same start and a converged or else the better optimum is kept. ``converged`` is
    True only for a proper interior maximum (see :mod:`.log_space_fit`); otherwise the
    parameters are the optimiser's last point (typically drifting off towards 0 or infinity) and
    must not be used for forecasts.
    """
    xs, txs, ts = _as_arrays(x, t_x, T)
    if xs.size == 0:
        raise ValueError("BG/NBD needs at least one customer")
    rows, counts = _distinct_rows(np.column_stack([xs, txs, ts]))
    histories = _prepare(rows[:, 0], rows[:, 1], rows[:, 2], counts / xs.size)

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        return _negative_mean_ll_and_gradient(log_params, histories)

    def value_only(log_params: FloatArray) -> float:
        r, alpha, a, b = (float(value) for value in np.exp(log_params))
        return -float(np.dot(histories.weights, _log_likelihood_terms((r, alpha, a, b), histories)))

    fit = maximise(objective, np.zeros(4), proper_box=LOG_BOUND - 1e-6, value_only=value_only)
    log_params, mean_nll, converged = fit
    r, alpha, a, b = (float(value) for value in np.exp(log_params))
    return BgNbdParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=-mean_nll * xs.size,
        converged=converged,
        n_customers=int(xs.size),
    )


def p_alive(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(still alive at T | x, t_x, T); exactly 1 when x = 0 (nobody drops out before a repeat)."""
    xs, txs, ts = _as_arrays(x, t_x, T)
    r, alpha, a, b = params.as_tuple()
    repeat = xs > 0
    x_safe = np.where(repeat, xs, 1.0)  # b + x - 1 must stay positive where the term is unused
    log_odds_dead = (
        np.log(a)
        - np.log(b + x_safe - 1)
        + (r + x_safe) * (np.log(alpha + ts) - np.log(alpha + txs))
    )
    return np.asarray(np.where(repeat, expit(-log_odds_dead), 1.0), dtype=np.float64)


def expected_purchases(
    params: BgNbdParams, t: float, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """Expected number of purchases in (T, T + t] given each customer's history (FHL 2005, eq. 10).

    The notes' form is ``(a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x; a+b+x-1;
    z)] · P(alive)`` with ``z = t/(α+T+t)``. We evaluate the identical quantity after Euler's
    transformation ``₂F₁(A, B; C; z) = (1-z)^(C-A-B) ₂F₁(C-A, C-B; C; z)``, which turns the bracket
    into ``1 - (1-z)^(a-1) · ₂F₁(a+b-1-r, a-1; a+b+x-1; z)``: same value, but the huge power and the
    huge hypergeometric factor of a frequent buyer cancel analytically, not in floating point.
    Undefined for a = 1 exactly (the formula divides by a - 1).
    """
    if t < 0:
        raise ValueError(f"forecast horizon t must be >= 0, got {t}")
    r, alpha, a, b = params.as_tuple()
    if a == 1.0:
        raise ValueError("expected_purchases is undefined for a == 1 (division by a - 1)")
    xs, txs, ts = _as_arrays(x, t_x, T)
    z = t / (alpha + ts + t)
    tail = np.power(1.0 - z, a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + xs - 1.0, z)
    expected = (a + b + xs - 1.0) / (a - 1.0) * (1.0 - tail) * p_alive(params, xs, txs, ts)
    return np.asarray(expected, dtype=np.float64)


# --- internals ---


def _as_arrays(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Broadcast to 1-D float arrays and reject histories the model cannot have produced."""
    xs, txs, ts = np.broadcast_arrays(
        np.atleast_1d(np.asarray(x, dtype=np.float64)),
        np.atleast_1d(np.asarray(t_x, dtype=np.float64)),
        np.atleast_1d(np.asarray(T, dtype=np.float64)),
    )
    if xs.ndim != 1:
        raise ValueError("x, t_x and T must be scalars or 1-D arrays")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(txs)) and np.all(np.isfinite(ts))):
        raise ValueError("x, t_x and T must be finite")
    if np.any(xs < 0) or np.any(xs != np.floor(xs)):
        raise ValueError("x (repeat purchases) must be non-negative whole numbers")
    if np.any(txs < 0) or np.any(txs > ts) or np.any(ts <= 0):
        raise ValueError("need 0 <= t_x <= T and T > 0")
    if np.any((xs == 0) & (txs != 0)):
        raise ValueError("t_x must be 0 when x is 0")
    return xs, txs, ts


def _distinct_rows(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Distinct rows in lexicographic order and how often each occurs.

    Same result as ``np.unique(rows, axis=0, return_counts=True)``, which sorts the rows as opaque
    byte strings and takes several times longer than a lexsort of the columns.
    """
    ordered = rows[np.lexsort(rows.T[::-1])]
    is_new = np.ones(len(ordered), dtype=np.bool_)
    is_new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    starts = np.flatnonzero(is_new)
    counts = np.diff(np.append(starts, len(ordered))).astype(np.float64)
    return ordered[starts], counts


class _Histories(NamedTuple):
    """Validated histories prepared for many likelihood evaluations.

    The special functions (gammaln, betaln, digamma) depend on a history only through x, which takes
    few distinct values, so they are evaluated once per distinct x and summed with that level's
    weight. Likewise log(α + T), log(α + t_x) and their reciprocals are taken once per distinct T
    and t_x (a few hundred days) and gathered, and the histories without a repeat purchase, whose
    term is just -r log(α + T), are summed per distinct T: at a million customers the distinct
    rows are still hundreds of thousands (t_x and T in days), so per-row logs were most of the
    cost.
    """

    xs: FloatArray
    txs: FloatArray
    ts: FloatArray
    weights: FloatArray
    x_levels: FloatArray  # distinct values of x, ascending
    x_index: IntArray  # xs == x_levels[x_index]
    level_weights: FloatArray  # summed weights per distinct x
    t_levels: FloatArray  # distinct T of all histories
    once_t_weights: FloatArray  # summed weights of the histories with x = 0, per distinct T
    rx: FloatArray  # x of the histories with x > 0 (the "repeat rows" below)
    r_weights: FloatArray
    r_t_index: IntArray  # T == t_levels[r_t_index]
    tx_levels: FloatArray  # distinct t_x of the repeat rows
    r_tx_index: IntArray
    r_x_index: IntArray  # into x_levels


def _prepare(xs: FloatArray, txs: FloatArray, ts: FloatArray, weights: FloatArray) -> _Histories:
    x_levels, x_index = np.unique(xs, return_inverse=True)
    level_weights = np.asarray(np.bincount(x_index, weights=weights), dtype=np.float64)
    t_levels, t_index = np.unique(ts, return_inverse=True)
    repeat = xs > 0
    once_t_weights = np.bincount(
        t_index[~repeat], weights=weights[~repeat], minlength=t_levels.size
    )
    tx_levels, tx_index = np.unique(txs[repeat], return_inverse=True)
    return _Histories(
        xs, txs, ts, weights, x_levels, x_index.astype(np.int64), level_weights,
        t_levels, np.asarray(once_t_weights, dtype=np.float64), xs[repeat], weights[repeat],
        t_index[repeat].astype(np.int64), tx_levels, tx_index.astype(np.int64),
        x_index[repeat].astype(np.int64),
    )  # fmt: skip


def _head_by_level(params4: tuple[float, float, float, float], levels: FloatArray) -> FloatArray:
    """ln[Γ(r+x) α^r / Γ(r)] + ln[B(a, b+x) / B(a, b)] for each distinct x."""
    r, alpha, a, b = params4
    head = gammaln(r + levels) - gammaln(r) + r * np.log(alpha) + betaln(a, b + levels)
    return np.asarray(head - betaln(a, b), dtype=np.float64)


def _mixture_terms(
    params4: tuple[float, float, float, float], h: _Histories
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(alive term, dead term, log of their sum) of the last likelihood factor, per history."""
    r, alpha, a, b = params4
    repeat = h.xs > 0
    x_safe = np.where(repeat, h.xs, 1.0)  # b + x - 1 must stay positive where the term is unused
    alive_term = -(r + h.xs) * np.log(alpha + h.ts)
    dead = np.log(a) - np.log(b + x_safe - 1.0) - (r + x_safe) * np.log(alpha + h.txs)
    dead_term = np.where(repeat, dead, -np.inf)
    return alive_term, dead_term, np.logaddexp(alive_term, dead_term)


def _log_likelihood_terms(params4: tuple[float, float, float, float], h: _Histories) -> FloatArray:
    """:func:`log_likelihood_terms` on prepared histories (the optimiser's inner loop)."""
    head = _head_by_level(params4, h.x_levels)[h.x_index]
    return np.asarray(head + _mixture_terms(params4, h)[2], dtype=np.float64)


def _negative_mean_ll_and_gradient(
    log_params: FloatArray, h: _Histories
) -> tuple[float, FloatArray]:
    """Weighted negative log-likelihood and its gradient with respect to the log-parameters.

    Per repeat row, with A = -(r+x) log(α+T) (alive at T) and D = log a - log(b+x-1) -
    (r+x) log(α+t_x) (dropped out after the last purchase): the term is A + log(1 + e^(D-A)),
    and e^A, e^D share the derivative of the log-sum-exp in the proportions 1 : e^(D-A). Rows
    without a repeat contribute A alone, summed per distinct T. Sums are numpy's pairwise sums,
    not BLAS dot products, whose result and speed depend on the thread count.
    """
    r, alpha, a, b = (float(value) for value in np.exp(log_params))
    head = _head_by_level((r, alpha, a, b), h.x_levels)
    log_t = np.log(alpha + h.t_levels)
    log_tx = np.log(alpha + h.tx_levels)
    la_t, la_tx = log_t[h.r_t_index], log_tx[h.r_tx_index]
    rx = r + h.rx
    alive = -rx * la_t
    # b + x - 1 at x >= 1 only (x = 0 levels are never gathered for a repeat row).
    b_x = b + np.maximum(h.x_levels, 1.0) - 1.0
    dead = (np.log(a) - np.log(b_x))[h.r_x_index] - rx * la_tx
    gap = dead - alive
    small = np.exp(-np.abs(gap))  # e^-|D-A| <= 1: no overflow
    lead = gap >= 0
    mixed = np.where(lead, dead, alive) + np.log1p(small)
    share_dead = np.where(lead, 1.0, small) / (1.0 + small)
    w_dead = h.r_weights * share_dead
    w_alive = h.r_weights - w_dead
    once = h.once_t_weights
    value = -float(
        (h.level_weights * head).sum() + (h.r_weights * mixed).sum() - r * (once * log_t).sum()
    )
    total = float(h.weights.sum())
    levels, lw = h.x_levels, h.level_weights
    inv_t, inv_tx = 1.0 / (alpha + h.t_levels), 1.0 / (alpha + h.tx_levels)
    inv_b = 1.0 / b_x
    d_r = (
        (lw * digamma(r + levels)).sum()
        + total * (np.log(alpha) - digamma(r))
        - (w_alive * la_t).sum()
        - (w_dead * la_tx).sum()
        - (once * log_t).sum()
    )
    d_alpha = (
        total * r / alpha
        - (w_alive * rx * inv_t[h.r_t_index]).sum()
        - (w_dead * rx * inv_tx[h.r_tx_index]).sum()
        - r * (once * inv_t).sum()
    )
    d_a = total * digamma(a + b) - (lw * digamma(a + b + levels)).sum() + w_dead.sum() / a
    d_b = (
        (lw * (digamma(b + levels) - digamma(a + b + levels))).sum()
        + total * (digamma(a + b) - digamma(b))
        - (w_dead * inv_b[h.r_x_index]).sum()
    )
    # Chain rule for θ = e^φ: d/dφ = θ · d/dθ.
    gradient = -np.array([d_r, d_alpha, d_a, d_b], dtype=np.float64) * np.array([r, alpha, a, b])
    return value, gradient

"""The BG/NBD model's generative process, for checking that the fitter recovers the parameters
it was given (:mod:`crm_es.analytics.bgnbd`): λ ~ Gamma(r, rate α) purchases per unit of time,
and after each purchase the customer drops out with p ~ Beta(a, b)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crm_es.analytics.bgnbd import FloatArray, IntArray


def simulate_bgnbd(
    r: float,
    alpha: float,
    a: float,
    b: float,
    n_customers: int,
    T: float | npt.ArrayLike,
    rng: np.random.Generator,
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Draw (x, t_x, T) for ``n_customers`` from the BG/NBD generative process.

    Each customer's first purchase is at time 0. Exact and vectorised: with N ~ Poisson(λT) purchase
    opportunities in (0, T] and K ~ Geometric(p) the repeat purchase after which the customer drops
    out, x = min(N, K); given N the arrival times are uniform order statistics, so the x-th one is
    T · Beta(x, N - x + 1).
    """
    if min(r, alpha, a, b) <= 0:
        raise ValueError("BG/NBD parameters must all be positive")
    ts = np.broadcast_to(np.asarray(T, dtype=np.float64), (n_customers,)).copy()
    if np.any(ts <= 0):
        raise ValueError("observation lengths T must be positive")
    rate = rng.gamma(shape=r, scale=1.0 / alpha, size=n_customers)
    dropout = np.clip(rng.beta(a, b, size=n_customers), np.finfo(np.float64).tiny, 1.0)
    opportunities = rng.poisson(rate * ts)
    # Geometric by inversion in floats: P(K > k) = (1 - p)^k. numpy's integer geometric sampler can
    # overflow for a tiny p; here K may be huge or inf and is only ever compared with N.
    uniform = 1.0 - rng.random(n_customers)  # in (0, 1], so log() is finite
    with np.errstate(divide="ignore", invalid="ignore"):
        dropout_after = np.floor(np.log(uniform) / np.log1p(-dropout)) + 1.0
    dropout_after = np.where(np.isnan(dropout_after), 1.0, dropout_after)
    xs = np.minimum(opportunities, dropout_after).astype(np.int64)
    repeat = xs > 0
    shape_a = np.where(repeat, xs, 1)
    shape_b = np.where(repeat, opportunities - xs + 1, 1)
    txs = np.where(repeat, ts * rng.beta(shape_a, shape_b), 0.0)
    return xs, txs, ts

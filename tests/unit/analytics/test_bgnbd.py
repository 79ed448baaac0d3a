"""BG/NBD: likelihood check vectors, fit, parameter recovery, P(alive), forecasts, simulation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from crm_es.analytics.bgnbd import (
    BgNbdParams,
    _negative_mean_ll_and_gradient,
    _prepare,
    expected_purchases,
    fit_bgnbd,
    log_likelihood_terms,
    p_alive,
)
from crm_es.analytics.bgnbd_simulation import simulate_bgnbd

TRUE = (0.25, 4.0, 0.8, 2.5)  # r, alpha, a, b as in Fader, Hardie & Lee (2005)
TRUE_PARAMS = BgNbdParams(*TRUE, log_likelihood=0.0, converged=True, n_customers=0)
WEEKS = 52.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def step_by_step(
    n: int, horizon: float, future: float, rng: np.random.Generator
) -> tuple[IntArray, FloatArray, IntArray, npt.NDArray[np.bool_]]:
    """Literal simulation, purchase by purchase: (x, t_x) in (0, horizon], purchases in
    (horizon, horizon + future], and whether the customer was still alive at ``horizon``."""
    r, alpha, a, b = TRUE
    rates, dropouts = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    x, t_x = np.zeros(n, np.int64), np.zeros(n)
    later, alive = np.zeros(n, np.int64), np.ones(n, np.bool_)
    for i in range(n):
        clock = 0.0
        while True:
            clock += rng.exponential(1 / rates[i])
            if clock > horizon + future:
                break
            if clock <= horizon:
                x[i], t_x[i] = x[i] + 1, clock
            else:
                later[i] += 1
            if rng.random() < dropouts[i]:
                alive[i] = clock > horizon
                break
    return x, t_x, later, alive


def test_log_likelihood_matches_the_published_check_vectors() -> None:
    terms = log_likelihood_terms(TRUE, [0, 200], [0.0, 38.0], 40.0)
    assert terms == pytest.approx([-0.5994738, 100.7956931], abs=1e-6)


def test_log_likelihood_stays_finite_for_very_frequent_buyers() -> None:
    terms = log_likelihood_terms(TRUE, [5000, 1], [51.9, 0.5], WEEKS)
    assert np.all(np.isfinite(terms))


def test_analytic_gradient_matches_finite_differences() -> None:
    x, t_x, T = simulate_bgnbd(*TRUE, 2000, WEEKS, np.random.default_rng(11))
    histories = _prepare(x.astype(np.float64), t_x, T, np.full(x.size, 1 / x.size))
    for point in (np.zeros(4), np.log(TRUE), np.array([1.0, -1.0, 0.3, 2.0])):
        value, analytic = _negative_mean_ll_and_gradient(point, histories)
        r, alpha, a, b = (float(v) for v in np.exp(point))
        assert value == pytest.approx(-log_likelihood_terms((r, alpha, a, b), x, t_x, T).mean())

        def value_at(p: FloatArray) -> float:
            return _negative_mean_ll_and_gradient(p, histories)[0]

        assert analytic == pytest.approx(approx_fprime(point, value_at, 1e-7), rel=1e-4, abs=1e-6)


def test_fit_recovers_simulated_parameters_within_stated_tolerance() -> None:
    # Measured relative errors of this estimator at n = 10,000 and T = 52 over 200 seeds:
    # r p99 5% (max 7%), alpha p99 9% (max 10%), a p99 22% (max 23%), b p99 28% (max 36%).
    # a and b (the dropout process) are much less identified than r and alpha, hence:
    tolerance = {"r": 0.10, "alpha": 0.15, "a": 0.30, "b": 0.40}
    x, t_x, T = simulate_bgnbd(*TRUE, 10_000, WEEKS, np.random.default_rng(2005))
    fitted = fit_bgnbd(x, t_x, T)
    assert fitted.converged
    assert fitted.n_customers == 10_000
    for name, true_value in zip(("r", "alpha", "a", "b"), TRUE, strict=True):
        assert getattr(fitted, name) == pytest.approx(true_value, rel=tolerance[name]), name


def test_fit_is_at_least_as_likely_as_the_true_parameters() -> None:
    x, t_x, T = simulate_bgnbd(*TRUE, 5000, WEEKS, np.random.default_rng(3))
    fitted = fit_bgnbd(x, t_x, T)
    at_truth = float(log_likelihood_terms(TRUE, x, t_x, T).sum())
    at_fit = float(log_likelihood_terms(fitted.as_tuple(), x, t_x, T).sum())
    assert fitted.log_likelihood == pytest.approx(at_fit, rel=1e-9)
    assert at_fit >= at_truth


def test_fit_is_deterministic_whatever_the_customer_order() -> None:
    rng = np.random.default_rng(5)
    x, t_x, T = simulate_bgnbd(*TRUE, 3000, rng.uniform(26.0, 78.0, 3000), rng)
    order = rng.permutation(x.size)
    assert fit_bgnbd(x, t_x, T) == fit_bgnbd(x[order], t_x[order], T[order])


def test_fit_reports_no_convergence_when_nobody_ever_repeats() -> None:
    fitted = fit_bgnbd(np.zeros(200), np.zeros(200), np.full(200, WEEKS))
    assert not fitted.converged


@pytest.mark.parametrize(
    ("x", "t_x", "T"),
    [([], [], []), ([1], [53.0], [52.0]), ([-1], [0.0], [52.0]), ([0], [3.0], [52.0])],
    ids=["empty", "t_x-after-T", "negative-x", "t_x-without-repeat"],
)
def test_fit_rejects_histories_the_model_cannot_produce(
    x: list[float], t_x: list[float], T: list[float]
) -> None:
    with pytest.raises(ValueError):
        fit_bgnbd(x, t_x, T)


def test_p_alive_is_one_without_repeat_purchases() -> None:
    alive = p_alive(TRUE_PARAMS, [0, 0, 0], [0.0, 0.0, 0.0], [1.0, 52.0, 500.0])
    assert np.all(alive == 1.0)


def test_p_alive_falls_the_longer_a_frequent_buyer_has_been_silent() -> None:
    alive = p_alive(TRUE_PARAMS, 10, [51.0, 40.0, 20.0, 5.0], WEEKS)
    assert np.all(np.diff(alive) < 0)
    assert np.all((alive > 0) & (alive < 1))


def test_expected_purchases_increase_with_the_horizon() -> None:
    x, t_x = np.array([0, 1, 4, 30]), np.array([0.0, 10.0, 45.0, 50.0])
    horizons = [0.0, 1.0, 4.0, 13.0, 52.0, 260.0]
    forecasts = np.array([expected_purchases(TRUE_PARAMS, t, x, t_x, WEEKS) for t in horizons])
    assert np.all(forecasts[0] == 0.0)
    assert np.all(np.diff(forecasts, axis=0) > 0)


def test_expected_purchases_equal_the_untransformed_formula_of_the_notes() -> None:
    r, alpha, a, b = TRUE
    x, t_x, T = np.array([0.0, 1.0, 5.0, 50.0]), np.array([0.0, 10.0, 30.0, 38.0]), 40.0
    for t in (1.0, 10.0, 52.0):
        z = t / (alpha + T + t)
        bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        notes = (a + b + x - 1) / (a - 1) * bracket * p_alive(TRUE_PARAMS, x, t_x, T)
        assert expected_purchases(TRUE_PARAMS, t, x, t_x, T) == pytest.approx(notes, rel=1e-9)


def test_expected_purchases_stay_finite_where_the_untransformed_formula_overflows() -> None:
    forecast = expected_purchases(TRUE_PARAMS, 52.0, [1000], [39.9], 40.0)
    assert np.isfinite(forecast[0]) and 500 < forecast[0] < 2000


def test_expected_purchases_reject_a_equal_to_one_and_negative_horizons() -> None:
    with pytest.raises(ValueError):
        expected_purchases(BgNbdParams(0.25, 4.0, 1.0, 2.5, 0.0, True, 0), 1.0, 1, 1.0, 2.0)
    with pytest.raises(ValueError):
        expected_purchases(TRUE_PARAMS, -1.0, 1, 1.0, 2.0)


def test_forecasts_match_what_simulated_customers_then_do() -> None:
    # Across 100 seeds at n = 10,000 the total forecast missed the simulated total by at most 4.7%,
    # and the summed P(alive) missed the number of customers still alive by at most 1.2%.
    x, t_x, later, alive = step_by_step(10_000, WEEKS, 26.0, np.random.default_rng(8))
    assert expected_purchases(TRUE_PARAMS, 26.0, x, t_x, WEEKS).sum() == pytest.approx(
        later.sum(), rel=0.07
    )
    assert p_alive(TRUE_PARAMS, x, t_x, WEEKS).sum() == pytest.approx(alive.sum(), rel=0.03)


def test_simulation_gives_consistent_histories() -> None:
    rng = np.random.default_rng(9)
    x, t_x, T = simulate_bgnbd(*TRUE, 5000, rng.uniform(1.0, 100.0, 5000), rng)
    assert x.shape == t_x.shape == T.shape == (5000,)
    assert np.all((t_x == 0) == (x == 0))
    assert np.all((t_x >= 0) & (t_x <= T))


def test_simulation_follows_the_model_distribution() -> None:
    r, alpha, a, b = TRUE
    x, _, _ = simulate_bgnbd(*TRUE, 20_000, WEEKS, np.random.default_rng(10))
    # Over 200 seeds: share of x = 0 off by at most 0.011 (about 3 standard errors), mean by 5%.
    # P(X(T) = 0) = (alpha / (alpha + T))^r: nobody can drop out before a repeat purchase.
    assert np.mean(x == 0) == pytest.approx((alpha / (alpha + WEEKS)) ** r, abs=0.015)
    # E[X(T)], FHL (2005) eq. 9.
    z = WEEKS / (alpha + WEEKS)
    mean = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + WEEKS)) ** r * hyp2f1(r, b, a + b - 1, z))
    assert np.mean(x) == pytest.approx(mean, rel=0.08)

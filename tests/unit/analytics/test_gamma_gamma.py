"""Gamma-Gamma spend model: hand-computed likelihood, fit and parameter recovery, conditional
expected spend, the spend-frequency check, and the CLV against a simulated future."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.optimize import approx_fprime

from crm_es.analytics.bgnbd import BgNbdParams, expected_purchases
from crm_es.analytics.bgnbd_simulation import simulate_bgnbd
from crm_es.analytics.gamma_gamma import (
    GammaGammaParams,
    _negative_mean_ll_and_gradient,
    conditional_expected_spend,
    expected_clv,
    fit_gamma_gamma,
    log_likelihood_terms,
    simulate_gamma_gamma,
    spend_frequency_correlation,
)

FloatArray = npt.NDArray[np.float64]

TRUE = (6.25, 3.74, 15.44)  # p, q, gamma: FHL (2005)'s CDNOW estimates (dollars)
BGNBD = (0.25, 4.0, 0.8, 2.5)  # r, alpha, a, b: FHL (2005)'s BG/NBD, weeks
BGNBD_PARAMS = BgNbdParams(*BGNBD, log_likelihood=0.0, converged=True, n_customers=0)


def gg(p: float, q: float, gamma: float) -> GammaGammaParams:
    return GammaGammaParams(p, q, gamma, log_likelihood=0.0, converged=True, n_customers=0)


def repeat_counts(n: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """x of ``n`` repeat buyers of a year under FHL's BG/NBD: realistic frequencies (about half
    with x = 1, a long tail), as the value report fits them."""
    found: list[npt.NDArray[np.int64]] = []
    while sum(len(f) for f in found) < n:
        x, _, _ = simulate_bgnbd(*BGNBD, 4 * n, 52.0, rng)
        found.append(x[x > 0])
    return np.concatenate(found)[:n]


def test_log_likelihood_matches_values_computed_by_hand() -> None:
    # p = 6, q = 4, gamma = 16 keep every Gamma function a factorial:
    # x = 1, m = 10: Γ(10)/(Γ(6)Γ(4)) = 504, so f = 504 · 16^4 · 10^5 · 1^6 / 26^10;
    # x = 2, m = 5: Γ(16)/(Γ(12)Γ(4)) = 5460, so f = 5460 · 16^4 · 5^11 · 2^12 / 26^16.
    by_hand = [
        math.log(504 * 16**4 * 10**5) - math.log(26**10),
        math.log(5460 * 16**4 * 5**11 * 2**12) - math.log(26**16),
    ]
    assert by_hand == pytest.approx([-3.7551, -6.4124], abs=1e-4)  # the figures themselves
    terms = log_likelihood_terms((6.0, 4.0, 16.0), [1, 2], [10.0, 5.0])
    assert terms == pytest.approx(by_hand, rel=1e-12)


def test_log_likelihood_stays_finite_for_very_frequent_buyers() -> None:
    terms = log_likelihood_terms(TRUE, [5000, 1], [35.0, 0.01])
    assert np.all(np.isfinite(terms))


def test_analytic_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(11)
    x = repeat_counts(2000, rng).astype(np.float64)
    m = simulate_gamma_gamma(*TRUE, x, rng)
    for point in (np.zeros(3), np.log(TRUE), np.array([1.0, -0.5, 2.0])):
        value, analytic = _negative_mean_ll_and_gradient(point, x, m)
        p, q, gamma = (float(v) for v in np.exp(point))
        assert value == pytest.approx(-log_likelihood_terms((p, q, gamma), x, m).mean())

        def value_at(v: FloatArray) -> float:
            return _negative_mean_ll_and_gradient(v, x, m)[0]

        assert analytic == pytest.approx(approx_fprime(point, value_at, 1e-7), rel=1e-4, abs=1e-6)


# Tolerances derived, not guessed: 200 fits of 10,000 repeat buyers (x as repeat_counts draws
# them, seeds 0..199) gave standard deviations of the log-estimates of 0.055 (p), 0.021 (q),
# 0.074 (gamma) and 0.0077 (the mean spend p·gamma/(q−1)); the largest relative errors were 17 %,
# 6.3 %, 21 % and 2.3 %. Four standard deviations: p and gamma trade off against each other (the
# mean pins their ratio to q − 1), so they are much less identified than q and the mean.
TOLERANCE = {"p": 0.22, "q": 0.085, "gamma": 0.30, "mean_spend": 0.031}


def test_fit_recovers_simulated_parameters_within_stated_tolerance() -> None:
    rng = np.random.default_rng(2005)
    x = repeat_counts(10_000, rng)
    m = simulate_gamma_gamma(*TRUE, x, rng)
    fitted = fit_gamma_gamma(x, m)
    assert fitted.converged and fitted.n_customers == 10_000
    for name, true_value in zip(("p", "q", "gamma"), TRUE, strict=True):
        assert getattr(fitted, name) == pytest.approx(true_value, rel=TOLERANCE[name]), name
    true_mean = TRUE[0] * TRUE[2] / (TRUE[1] - 1)
    assert fitted.mean_spend == pytest.approx(true_mean, rel=TOLERANCE["mean_spend"])


def test_the_tolerance_tells_a_different_heterogeneity_apart() -> None:
    # The q tolerance is tight enough to matter: data with q = 3 (more heterogeneous spend)
    # fit outside it, so the recovery test could fail.
    rng = np.random.default_rng(2005)
    x = repeat_counts(10_000, rng)
    fitted = fit_gamma_gamma(x, simulate_gamma_gamma(6.25, 3.0, 12.4, x, rng))
    assert fitted.converged
    assert fitted.q != pytest.approx(TRUE[1], rel=TOLERANCE["q"])


def test_fit_is_at_least_as_likely_as_the_true_parameters() -> None:
    rng = np.random.default_rng(3)
    x = repeat_counts(5000, rng)
    m = simulate_gamma_gamma(*TRUE, x, rng)
    fitted = fit_gamma_gamma(x, m)
    at_truth = float(log_likelihood_terms(TRUE, x, m).sum())
    at_fit = float(log_likelihood_terms(fitted.as_tuple(), x, m).sum())
    assert fitted.log_likelihood == pytest.approx(at_fit, rel=1e-12)
    assert at_fit >= at_truth


def test_money_units_scale_gamma_only() -> None:
    # Yuan or fen: p and q are shapes, gamma a rate of money; the fit scales the data first.
    rng = np.random.default_rng(4)
    x = repeat_counts(3000, rng)
    m = simulate_gamma_gamma(*TRUE, x, rng)
    in_yuan, in_fen = fit_gamma_gamma(x, m), fit_gamma_gamma(x, m * 100)
    assert in_fen.p == pytest.approx(in_yuan.p, rel=1e-6)
    assert in_fen.q == pytest.approx(in_yuan.q, rel=1e-6)
    assert in_fen.gamma == pytest.approx(in_yuan.gamma * 100, rel=1e-6)


def test_fit_is_deterministic_whatever_the_customer_order() -> None:
    rng = np.random.default_rng(5)
    x = repeat_counts(3000, rng)
    m = simulate_gamma_gamma(*TRUE, x, rng)
    order = rng.permutation(x.size)
    # Exactly: a report for (as_of, known_at) must not move when later customers reorder rows.
    assert fit_gamma_gamma(x, m) == fit_gamma_gamma(x[order], m[order])
    check = spend_frequency_correlation(x, m)
    assert check == spend_frequency_correlation(x[order], m[order])


@pytest.mark.parametrize(
    ("x", "m"),
    [
        (np.arange(1, 501) % 7 + 1, np.full(500, 10.0)),  # everyone spends alike: q runs off
        ([1, 2, 3], [5.0, 6.0, 7.0]),  # three customers: the likelihood flattens, no maximum
    ],
    ids=["no-heterogeneity", "three-customers"],
)
def test_fit_reports_no_convergence_without_a_proper_maximum(
    x: npt.ArrayLike, m: npt.ArrayLike
) -> None:
    assert not fit_gamma_gamma(x, m).converged


@pytest.mark.parametrize(
    ("x", "m"),
    [([], []), ([0], [5.0]), ([1.5], [5.0]), ([2], [0.0]), ([2], [-1.0]), ([2], [np.nan])],
    ids=["empty", "no-repeat", "fractional-x", "zero-spend", "negative-spend", "nan"],
)
def test_fit_rejects_inputs_the_model_cannot_produce(x: list[float], m: list[float]) -> None:
    with pytest.raises(ValueError):
        fit_gamma_gamma(x, m)


def test_conditional_expected_spend_by_hand() -> None:
    params = gg(6.0, 4.0, 16.0)
    # x = 2, m = 5: 6 · (16 + 2·5) / (6·2 + 4 − 1) = 156 / 15; x = 0: the population mean
    # p·gamma/(q − 1) = 96 / 3; a weighted mean of the two, the weight of m growing with x.
    spend = conditional_expected_spend(params, [2, 0, 200], [5.0, 123.0, 5.0])
    assert spend[:2] == pytest.approx([10.4, 32.0], rel=1e-12)
    assert spend[2] == pytest.approx((3 * 32.0 + 1200 * 5.0) / 1203, rel=1e-12)
    assert params.mean_spend == pytest.approx(32.0)


def test_conditional_expected_spend_is_undefined_where_the_mean_is_infinite() -> None:
    params = gg(0.5, 0.8, 10.0)  # q < 1: the population mean does not exist
    spend = conditional_expected_spend(params, [0, 1], [0.0, 4.0])
    assert np.isnan(spend[0]) and math.isinf(params.mean_spend)
    assert spend[1] == pytest.approx(0.5 * (10.0 + 4.0) / 0.3)


def test_the_spend_frequency_check_is_near_zero_under_the_model_and_not_otherwise() -> None:
    rng = np.random.default_rng(6)
    x = repeat_counts(5000, rng)
    independent = simulate_gamma_gamma(*TRUE, x, rng)
    check = spend_frequency_correlation(x, independent)
    assert check.customers == 5000 and check.pearson_r is not None and check.p_value is not None
    assert check.pearson_r == pytest.approx(np.corrcoef(x, independent)[0, 1], rel=1e-9)
    assert abs(check.pearson_r) < 4 / math.sqrt(5000)  # four standard errors of r at rho = 0
    dependent = independent * np.sqrt(x)  # frequent buyers spend more per purchase
    assert (spend_frequency_correlation(x, dependent).pearson_r or 0.0) > 0.2
    assert spend_frequency_correlation([1, 2], [3.0, 4.0]).pearson_r is None
    assert spend_frequency_correlation([1, 2, 3], [3.0, 3.0, 3.0]).pearson_r is None


def test_clv_without_discounting_is_spend_times_expected_purchases() -> None:
    x, t_x, T = np.array([0, 1, 4, 30]), np.array([0.0, 10.0, 45.0, 50.0]), 52.0
    spend = np.array([30.0, 25.0, 40.0, 12.0])
    clv = expected_clv(BGNBD_PARAMS, spend, x, t_x, T, 365, 7.0, 0.0)
    horizon = expected_purchases(BGNBD_PARAMS, 365 / 7.0, x, t_x, T)
    assert clv == pytest.approx(spend * horizon, rel=1e-12)


def test_clv_discounts_each_period_at_its_end() -> None:
    # 45 days: periods end at day 30 and day 45 (a short last one), at 10 % a year.
    x, t_x, T = np.array([3]), np.array([40.0]), np.array([52.0])
    e30, e45 = (expected_purchases(BGNBD_PARAMS, days / 7.0, x, t_x, T)[0] for days in (30, 45))
    by_hand = 20.0 * (e30 / 1.1 ** (30 / 365) + (e45 - e30) / 1.1 ** (45 / 365))
    assert expected_clv(BGNBD_PARAMS, [20.0], x, t_x, T, 45, 7.0, 0.10)[0] == pytest.approx(
        by_hand, rel=1e-12
    )
    undiscounted = expected_clv(BGNBD_PARAMS, [20.0], x, t_x, T, 45, 7.0, 0.0)[0]
    assert by_hand < undiscounted < by_hand * 1.1 ** (45 / 365)


def simulate_future(
    n: int, observed: float, future: float, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """BG/NBD purchases and Gamma-Gamma values, purchase by purchase, vectorised over
    customers: each customer's (x, t_x, m̄ of the repeat purchases) in (0, observed] (the first
    purchase at 0) and the value of the purchases in (observed, observed + future]."""
    r, alpha, a, b = BGNBD
    p, q, gamma = TRUE
    rate, dropout = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    nu = rng.gamma(q, 1 / gamma, n)
    clock, x, t_x = np.zeros(n), np.zeros(n), np.zeros(n)
    past_value, future_value = np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        i = np.flatnonzero(alive)
        clock[i] += rng.exponential(1 / rate[i])
        ended = clock[i] > observed + future
        alive[i[ended]] = False
        i = i[~ended]
        value = rng.gamma(p, 1 / nu[i])
        past = clock[i] <= observed
        x[i[past]] += 1
        t_x[i[past]] = clock[i[past]]
        past_value[i[past]] += value[past]
        future_value[i[~past]] += value[~past]
        alive[i[rng.random(i.size) < dropout[i]]] = False
    with np.errstate(invalid="ignore"):
        mean = np.where(x > 0, past_value / np.maximum(x, 1), 0.0)
    return x, t_x, mean, future_value


def test_clv_sums_to_the_value_customers_then_bring_in() -> None:
    # The expected value given each history, summed over customers, is the expected total (law
    # of total expectation): with the true parameters and no discounting, the sum of the CLVs
    # must match the simulated future's value within its Monte Carlo error.
    rng = np.random.default_rng(7)
    x, t_x, mean, future_value = simulate_future(20_000, 52.0, 26.0, rng)
    spend = conditional_expected_spend(gg(*TRUE), x, mean)
    clv = expected_clv(BGNBD_PARAMS, spend, x, t_x, 52.0, 26 * 7, 7.0, 0.0)
    error = future_value - clv
    standard_error = error.std() * math.sqrt(error.size)
    assert abs(error.sum()) < 4 * standard_error
    assert standard_error < 0.05 * clv.sum()  # the check is sharp: 4 SE is under 20 %

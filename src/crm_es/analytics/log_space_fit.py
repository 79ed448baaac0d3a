"""Maximum likelihood over log-parameters, as both customer models fit (:mod:`.bgnbd`,
:mod:`.gamma_gamma`): L-BFGS-B with an analytic gradient from a fixed start, Nelder-Mead as the
fallback when L-BFGS-B fails at a plausible point, and "converged" only at a proper interior
maximum. Deterministic: a report must not move with optimiser slack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

FloatArray = npt.NDArray[np.float64]
# (value, gradient) of the mean negative log-likelihood at log-parameters.
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

# Search box for log-parameters: e^±20 covers any sensible parameter and keeps exp() finite. An
# optimum on the box edge means the likelihood has no interior maximum (e.g. nobody ever repeated),
# so such a fit is reported as not converged.
LOG_BOUND: Final = 20.0
# Tighter than scipy's defaults: the fits are cheap and a report should not move with slack.
_LBFGSB_OPTIONS: Final = {"ftol": 1e-13, "gtol": 1e-9, "maxiter": 1000}
# Nelder-Mead is the fallback only if L-BFGS-B failed inside e^±10 (see _failed_in_the_interior).
FALLBACK_LOG_BOX: Final = 10.0
# A proper 4-parameter fit needs ~500 iterations / ~800 evaluations; the caps bound a hopeless case.
_NELDER_MEAD_OPTIONS: Final = {"maxiter": 1500, "maxfev": 3000, "xatol": 1e-9, "fatol": 1e-13}
# Smallest Hessian eigenvalue (per customer, log-parameters) that counts as curving down: proper
# fits of simulated data sit around 1e-3..1e-1, flat directions of degenerate data at 0 ± 1e-7.
_MIN_CURVATURE: Final = 1e-6


class LogSpaceFit(NamedTuple):
    log_params: FloatArray
    mean_nll: float  # the mean negative log-likelihood at log_params
    converged: bool


def maximise(
    objective: Objective,
    start: FloatArray,
    proper_box: float,
    value_only: Callable[[FloatArray], float] | None = None,
) -> LogSpaceFit:
    """Minimise ``objective`` over log-parameters in the e^±LOG_BOUND box; ``converged`` only if
    the optimum lies strictly inside e^±``proper_box`` and the likelihood curves down there.
    ``value_only``: a cheaper value for Nelder-Mead (default: the objective's)."""
    bounds = [(-LOG_BOUND, LOG_BOUND)] * start.size

    def gradient_only(log_params: FloatArray) -> FloatArray:
        return objective(log_params)[1]

    def value(log_params: FloatArray) -> float:
        return objective(log_params)[0]

    result = minimize(
        objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=_LBFGSB_OPTIONS
    )
    converged = _is_proper_maximum(result, gradient_only, proper_box)
    if _failed_in_the_interior(result):
        fallback = minimize(
            value_only or value, start, method="Nelder-Mead", bounds=bounds,
            options=_NELDER_MEAD_OPTIONS,
        )  # fmt: skip
        fallback_converged = _is_proper_maximum(fallback, gradient_only, proper_box)
        if fallback_converged or float(fallback.fun) < float(result.fun):
            result, converged = fallback, fallback_converged
    return LogSpaceFit(np.asarray(result.x, dtype=np.float64), float(result.fun), converged)


def _failed_in_the_interior(result: Any) -> bool:
    """Is a second optimiser worth its cost after this L-BFGS-B result?

    Only when L-BFGS-B itself failed (typically a line search breaking down in floating-point
    noise) at a plausible point. If it failed while drifting beyond e^±10, the likelihood keeps
    rising towards a boundary (e.g. customers without heterogeneity send r and alpha to infinity),
    no method finds an interior maximum, and Nelder-Mead would spend ~800 full likelihood
    evaluations to confirm it. If it succeeded but the maximum is not proper, the data are at
    fault, not the method.
    """
    log_params = np.asarray(result.x, dtype=np.float64)
    succeeded = bool(result.success) and bool(np.isfinite(float(result.fun)))
    return not succeeded and bool(np.all(np.abs(log_params) < FALLBACK_LOG_BOX))


def _is_proper_maximum(
    result: Any, gradient: Callable[[FloatArray], FloatArray], box: float
) -> bool:
    """Did the optimiser stop at a proper interior maximum of the likelihood?

    Besides scipy's success flag this asks that the optimum is inside ``box`` and that the
    likelihood curves down in every direction there (the Hessian of the mean negative
    log-likelihood, by central differences of the analytic gradient, is positive definite).
    Without the curvature test, data with no interior maximum (nobody repeated, or a handful of
    customers) "converge" where the likelihood has merely flattened out on its way to infinity.
    """
    log_params = np.asarray(result.x, dtype=np.float64)
    if not (bool(result.success) and np.isfinite(float(result.fun))):
        return False
    if np.any(np.abs(log_params) >= box):
        return False
    step = 1e-5
    columns = [
        (gradient(log_params + step * unit) - gradient(log_params - step * unit)) / (2 * step)
        for unit in np.eye(log_params.size)
    ]
    hessian = np.array(columns)
    eigenvalues = np.linalg.eigvalsh((hessian + hessian.T) / 2)
    return bool(np.all(np.isfinite(eigenvalues)) and eigenvalues.min() > _MIN_CURVATURE)
